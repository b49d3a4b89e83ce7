"""What an environment build can install without a package index: this machine's own packages.

amlemu's own packages (its scoring server, ONNX Runtime, Flask, NumPy, scikit-learn, pandas and
the rest of its dependency closure) are installed in the interpreter amlemu runs on. The
*wheelhouse* holds each of those installed distributions repacked as a wheel, made once per
machine and per host Python, and every build passes it to the installer as ``--find-links``: a
build that needs only those packages needs no index, and one that needs the index for the user's
own packages fetches nothing else.

Where things are kept, across every ``AMLEMU_HOME`` (tests use a fresh home per test; the wheels
stay): the machine cache folder, ``AMLEMU_MACHINE_CACHE`` (default ``$XDG_CACHE_HOME/amlemu``, i.e.
``~/.cache/amlemu``), holding ``wheelhouse/<python>-<machine>/`` and, unless ``AMLEMU_UV_CACHE`` or
``UV_CACHE_DIR`` names another, uv's one shared wheel cache ``uv/``.

The repacking is written here because no maintained tool does it: pip and uv install wheels but
never rebuild one from an installed distribution, and ``wheel pack`` packs an unpacked wheel's
folder, which a shared ``site-packages`` is not. It follows the wheel format (PEP 427, PEP 491):
the files the distribution's ``RECORD`` lists, with its ``.dist-info`` (less what an installer
writes: ``INSTALLER``, ``REQUESTED``, ``direct_url.json``), files outside ``site-packages``
under ``<name>.data/`` (``scripts/`` with a ``#!python`` line, ``data/``), console scripts left
to the installer (it writes them from ``entry_points.txt``), a new ``RECORD`` with sha256 hashes,
and a file name made of the tags the distribution's own ``WHEEL`` file records.
"""

from __future__ import annotations

import base64
import csv
import fcntl
import hashlib
import importlib.metadata as md
import io
import json
import os
import platform
import re
import sys
import sysconfig
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from packaging.tags import parse_tag
from packaging.utils import canonicalize_name, parse_wheel_filename

from emulator import config

#: files of a ``.dist-info`` that an installer writes for itself, never part of a wheel
INSTALLER_FILES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD", "uv_cache.json"}
SKIP_DISTRIBUTIONS = {"amlemu"}  # amlemu itself: the scoring server reaches a virtualenv on PYTHONPATH


def machine_cache() -> Path:
    """The folder of what every ``AMLEMU_HOME`` on this machine shares (wheels, uv's cache, virtualenvs)."""
    return config.machine_cache()


def uv_cache_dir() -> Path:
    """uv's one shared wheel cache: ``AMLEMU_UV_CACHE``, else ``UV_CACHE_DIR``, else the machine cache's ``uv``."""
    configured = config.setting("uv_cache") or os.environ.get("UV_CACHE_DIR")
    return Path(configured).expanduser() if configured else machine_cache() / "uv"


def folder() -> Path:
    """The wheelhouse of the host interpreter (made or completed by :func:`ensure`)."""
    return machine_cache() / "wheelhouse" / f"{sys.implementation.cache_tag}-{platform.machine()}"


def ensure(log: Callable[[str], None] | None = None) -> Path:
    """The wheelhouse with every installed distribution of the host environment, packed once.

    A marker named by the set of installed distributions makes the check one directory listing
    when nothing changed; a new or upgraded package is packed on the next build.
    """
    target = folder()
    site = Path(sysconfig.get_paths()["purelib"])
    names = sorted(p.name for p in site.glob("*.dist-info"))
    marker = target / f".packed-{hashlib.sha256(json.dumps(names).encode()).hexdigest()[:16]}"
    if marker.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return target
        missing = [(dist, name) for dist in md.distributions(path=[str(site)]) if (name := wheel_name(dist))]
        missing = [(dist, name) for dist, name in missing if not (target / name).exists()]
        if missing and log:
            log(f"[amlemu] repacking {len(missing)} of this machine's installed packages as wheels into {target} "
                "(once per machine: builds then need no index for them) ...")  # fmt: skip
        for dist, name in missing:
            repack(dist, target / name)
        for old in target.glob(".packed-*"):
            old.unlink(missing_ok=True)
        marker.write_text("\n".join(names) + "\n")
    return target


def wheel_name(dist: md.Distribution) -> str | None:
    """The wheel file name an installed distribution repacks to, or None when it cannot be repacked
    (no ``RECORD`` or ``WHEEL``: installed by other means; editable: its files are a source folder)."""
    name = dist.metadata["Name"]
    if not name or canonicalize_name(name) in SKIP_DISTRIBUTIONS:
        return None
    wheel, record, direct = dist.read_text("WHEEL"), dist.read_text("RECORD"), dist.read_text("direct_url.json")
    if not wheel or not record:
        return None
    if direct and json.loads(direct).get("dir_info", {}).get("editable"):
        return None
    tags = [tag for line in wheel.splitlines() if line.startswith("Tag:") for tag in parse_tag(line[4:].strip())]
    if not tags:
        return None
    build = next((line[6:].strip() for line in wheel.splitlines() if line.startswith("Build:")), "")
    parts = [
        ".".join(sorted({t.interpreter for t in tags})),
        ".".join(sorted({t.abi for t in tags})),
        ".".join(sorted({t.platform for t in tags})),
    ]
    escaped = re.sub(r"[-_.]+", "_", name).lower()
    return "-".join([escaped, dist.version, *([build] if build else []), *parts]) + ".whl"


def repack(dist: md.Distribution, target: Path) -> Path:
    """Write ``dist`` (an installed distribution) as the wheel ``target``, atomically."""
    site = Path(dist.locate_file(""))
    prefix = Path(sys.prefix)
    dist_info = next(f.parts[0] for f in dist.files or [] if f.name == "METADATA")  # the .dist-info folder
    data_dir = dist_info.removesuffix(".dist-info") + ".data"
    entry_scripts = {ep.name for ep in dist.entry_points if ep.group in ("console_scripts", "gui_scripts")}
    rows: list[tuple[str, str, str]] = []
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        # stored, not deflated: packing and unpacking stay disk-bound, and the wheels never leave the machine
        with zipfile.ZipFile(staging, "w", zipfile.ZIP_STORED) as archive:
            for arcname, path in _members(dist, site, prefix, dist_info, data_dir, entry_scripts):
                data = path.read_bytes()
                if arcname.startswith(f"{data_dir}/scripts/") and data.startswith(b"#!") and b"python" in data[:200]:
                    data = b"#!python" + data[data.index(b"\n") :]  # the installer writes its own interpreter
                archive.writestr(_info(arcname, path), data)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                rows.append((arcname, f"sha256={digest}", str(len(data))))
            record = io.StringIO()
            writer = csv.writer(record, lineterminator="\n")
            writer.writerows(rows)
            writer.writerow((f"{dist_info}/RECORD", "", ""))
            archive.writestr(f"{dist_info}/RECORD", record.getvalue())
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


def _members(
    dist: md.Distribution, site: Path, prefix: Path, dist_info: str, data_dir: str, entry_scripts: set[str]
) -> Iterable[tuple[str, Path]]:
    """(name in the wheel, file on disk) for each file ``RECORD`` lists that a wheel carries."""
    bin_dir = Path(sysconfig.get_paths()["scripts"]).resolve()
    seen = set()
    for entry in dist.files or []:
        rel = str(entry)
        path = (site / rel).resolve() if rel.startswith("..") else site / rel
        if "__pycache__" in entry.parts or rel.endswith(".pyc") or not path.is_file():
            continue
        if rel.startswith(".."):  # outside site-packages: a script or a data file under the prefix
            if path.parent == bin_dir:
                if path.name in entry_scripts:
                    continue  # the installer writes it from entry_points.txt
                arcname = f"{data_dir}/scripts/{path.name}"
            else:
                try:
                    arcname = f"{data_dir}/data/{path.relative_to(prefix.resolve()).as_posix()}"
                except ValueError:
                    continue  # outside the environment altogether: not the distribution's to carry
        elif entry.parts[0] == dist_info and entry.name in INSTALLER_FILES:
            continue
        else:
            arcname = Path(rel).as_posix()
        if arcname not in seen:
            seen.add(arcname)
            yield arcname, path


def _info(arcname: str, path: Path) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
    mode = path.stat().st_mode & 0o777
    info.external_attr = (0o100000 | (mode | 0o644)) << 16  # a regular file, its execute bits kept
    return info


# --------------------------------------------------------------------------- local wheels


def local_wheels(links: Iterable[str], project: str) -> list[Path]:
    """The wheels of ``project`` in the local folders among ``links`` (find-links), newest first."""
    found = []
    for link in links:
        path = Path(link.removeprefix("file://"))
        if path.is_dir():
            for wheel in path.glob("*.whl"):
                try:
                    name, version, _, _ = parse_wheel_filename(wheel.name)
                except ValueError:
                    continue
                if name == canonicalize_name(project):
                    found.append((version, wheel))
    return [wheel for _, wheel in sorted(found, reverse=True)]
