"""Where the front door listens and what it calls itself: one place for ports, URLs and names.

Three listeners on 127.0.0.1 (``--port`` sets the first, the others follow it):

- ``port``: plain HTTP, for what clients fetch without a token (the cloud metadata, the
  managed-identity token endpoint) and for MLflow, so that ``mlflow`` in any process needs no
  certificate set-up;
- ``port + 1``: HTTPS, the control plane (azure-core refuses to send a bearer token over
  plain HTTP), the discovery document, run history and the blob service;
- ``port + 2``: an HTTPS proxy (``HTTPS_PROXY``) that tunnels ``<account>.blob.<suffix>:443``,
  the host the SDK builds for datastore transfers with ``https`` hard-coded, to the blob service.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from emulator import config

DEFAULT_PORT = 5830
CLOUD_NAME = "AmlEmu"
#: the storage suffix in the cloud metadata: the SDK reaches ``<account>.blob.<suffix>`` through the proxy
STORAGE_SUFFIX = "amlemu.localhost"
#: the storage account of every workspace's default datastore (``workspaceblobstore``)
STORAGE_ACCOUNT = "amlemustore"


@dataclasses.dataclass(frozen=True)
class FrontDoor:
    """The addresses of one ``amlemu serve``."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    tls_port: int = DEFAULT_PORT + 1
    proxy_port: int = DEFAULT_PORT + 2
    auto_create: bool = True

    @classmethod
    def at(cls, port: int | None = None, host: str = "127.0.0.1", auto_create: bool = True) -> FrontDoor:
        port = port or int(config.setting("port", str(DEFAULT_PORT)))
        return cls(host=host, port=port, tls_port=port + 1, proxy_port=port + 2, auto_create=auto_create)

    @property
    def _netloc_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def http_url(self) -> str:
        return f"http://{self._netloc_host}:{self.port}"

    @property
    def https_url(self) -> str:
        return f"https://{self._netloc_host}:{self.tls_port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.http_url}/metadata/endpoints?api-version=2019-05-01"

    @property
    def identity_endpoint(self) -> str:
        return f"{self.http_url}/msi/token"

    @property
    def proxy_url(self) -> str:
        return f"http://{self._netloc_host}:{self.proxy_port}"

    @property
    def resource_manager(self) -> str:
        """ARM's base URL (the cloud's ``resourceManager``), also the audience of control-plane tokens."""
        return f"{self.https_url}/"

    @property
    def blob_host_suffix(self) -> str:
        return f".blob.{STORAGE_SUFFIX}"


def folder() -> Path:
    """The front door's files in ``AMLEMU_HOME`` (certificates, keys, the token secret), 0700."""
    return config.private_dir(config.home() / "frontdoor")


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` with mode 0600 from its creation (keys and secrets are never world-readable, not even briefly)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
