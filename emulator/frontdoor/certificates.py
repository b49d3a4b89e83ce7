"""A local certificate authority and the front door's server certificate, made with ``cryptography``.

azure-core sends a bearer token only over HTTPS, so the control plane needs a certificate
that clients trust. ``amlemu serve`` makes a CA once per ``AMLEMU_HOME`` and a server
certificate signed by it for ``127.0.0.1``, ``::1``, ``localhost`` and the storage hosts;
clients trust it through ``REQUESTS_CA_BUNDLE``, a bundle of certifi's roots plus this CA
(``amlemu env`` prints it). Private keys are written 0600 and never leave that folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from pathlib import Path

from emulator.frontdoor import settings

CA_DAYS = 3650
SERVER_DAYS = 825


@dataclasses.dataclass(frozen=True)
class Certificates:
    ca: Path
    server: Path
    server_key: Path
    bundle: Path


def _names() -> list[str]:
    return ["localhost", settings.STORAGE_SUFFIX, f"*.blob.{settings.STORAGE_SUFFIX}"]


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_key(path: Path):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _make_ca(folder: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"amlemu local CA ({folder.parent.name})")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    settings.write_private(folder / "ca.key", _pem_key(key))
    (folder / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _server_is_current(server: Path, ca_pem: bytes) -> bool:
    """The server certificate exists, was signed by this CA, names every host and is not near expiry."""
    from cryptography import x509

    if not server.is_file():
        return False
    cert = x509.load_pem_x509_certificate(server.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_pem)
    if cert.issuer != ca.subject or cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < dt.timedelta(days=30):
        return False
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(sans.get_values_for_type(x509.DNSName)) >= set(_names())


def _make_server(folder: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = _load_key(folder / "ca.key")
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    key = _key()
    now = dt.datetime.now(dt.UTC)
    sans = [x509.DNSName(n) for n in _names()] + [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amlemu front door")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    settings.write_private(folder / "server.key", _pem_key(key))
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure() -> Certificates:
    """The CA, the server certificate and the trust bundle, made on first use (and the server
    certificate again when it lacks a host or nears expiry); the same files afterwards."""
    import certifi

    folder = settings.folder()
    if not (folder / "ca.pem").is_file() or not (folder / "ca.key").is_file():
        _make_ca(folder)
    ca_pem = (folder / "ca.pem").read_bytes()
    if not _server_is_current(folder / "server.pem", ca_pem) or not (folder / "server.key").is_file():
        _make_server(folder)
    bundle = folder / "ca-bundle.pem"
    want = Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n" + ca_pem
    if not bundle.is_file() or bundle.read_bytes() != want:
        bundle.write_bytes(want)
    return Certificates(
        ca=folder / "ca.pem", server=folder / "server.pem", server_key=folder / "server.key", bundle=bundle
    )


def server_context(certs: Certificates):
    """The TLS context of the HTTPS listeners (TLS 1.2 or later)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certs.server, certs.server_key)
    return ctx
