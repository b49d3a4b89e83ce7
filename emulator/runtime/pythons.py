"""The Python interpreters on this machine, by minor version, for environments that ask for one.

A conda file that pins ``python=3.9`` is built on a Python 3.9 when this machine has one that
runs; otherwise the builder falls back to the host Python and says so (see
:mod:`emulator.runtime.pins`). Where amlemu looks, in order:

1. the folders of the ``AMLEMU_PYTHONS`` setting (an ``os.pathsep`` list), ``<folder>/python3.X``
   or ``<folder>/bin/python3.X``; ``AMLEMU_PYTHONS=host`` instead means only the host Python counts
   (as on a machine with no other Python);
2. ``python3.X`` in each folder of ``PATH``;
3. a Python that uv already manages (never downloaded here);
4. pyenv's versions (``$PYENV_ROOT`` or ``~/.pyenv``), newest patch release first;
5. ``/usr/bin`` and ``/usr/local/bin`` (Debian's ``python3.X`` packages).

Every candidate is run once to prove it works: a pyenv shim on ``PATH`` exists even when pyenv has
no such version selected, and then it fails with "command not found". The answers are kept for the
life of the process, so the builder may ask on every build-key computation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from emulator import config
from emulator.errors import ValidationError

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?([a-z]+\d*)?$")
_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"
_PROBE_TIMEOUT_S = 15

_probed: dict[Path, str | None] = {}  # candidate -> the minor version it runs as, None when it does not run
_found: dict[tuple[str, str, str], Path | None] = {}  # (minor, AMLEMU_PYTHONS, PATH) -> the answer


def host_version() -> str:
    """The running interpreter's minor version, e.g. ``"3.11"``."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def minor_version(version: str) -> str:
    """``"3.9"`` for ``"3.9"``, ``"3.9.18"`` or ``"3.9.*"``; a version without a minor part is refused."""
    match = _VERSION.match(str(version).strip().removesuffix(".*"))
    if not match:
        raise ValidationError(
            f"Python version {version!r} is not a version amlemu can look for: give major.minor "
            "(for example python=3.10 in the conda file)."
        )
    return f"{match[1]}.{match[2]}"


def find_interpreter(version: str) -> Path | None:
    """A working interpreter of ``version``'s minor version on this machine, or None.

    The host interpreter answers for its own version. Nothing is downloaded.
    """
    minor = minor_version(version)
    if minor == host_version():
        return Path(sys.executable)
    setting = (config.setting("pythons") or "").strip()
    key = (minor, setting, os.environ.get("PATH", ""))
    if key not in _found:
        _found[key] = None if setting.lower() == "host" else _search(minor, setting)
    return _found[key]


def _search(minor: str, setting: str) -> Path | None:
    for candidate in _candidates(minor, setting):
        if _runs_as(candidate) == minor:
            return candidate
    return None


def _candidates(minor: str, setting: str):
    """Every place a ``python<minor>`` may be, in the order of the module docstring (lazily: the uv
    query runs only when nothing before it worked)."""
    exe = f"python{minor}"
    for folder in filter(None, setting.split(os.pathsep)):
        yield Path(folder, exe)
        yield Path(folder, "bin", exe)
    for folder in filter(None, os.environ.get("PATH", "").split(os.pathsep)):
        yield Path(folder, exe)
    managed = _uv_managed(minor)
    if managed:
        yield managed
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for version in sorted(_pyenv_versions(pyenv_root / "versions", minor), key=_patch_number, reverse=True):
        yield version / "bin" / exe
    yield Path("/usr/bin", exe)
    yield Path("/usr/local/bin", exe)


def _pyenv_versions(versions: Path, minor: str) -> list[Path]:
    if not versions.is_dir():
        return []
    # "3.9", "3.9.18", "3.9.18t": not "3.90" nor pyenv's other flavours ("pypy3.9-7.3", "miniconda3-...")
    return [p for p in versions.iterdir() if re.fullmatch(rf"{re.escape(minor)}(\.\d+)?t?", p.name)]


def _patch_number(folder: Path) -> int:
    parts = folder.name.rstrip("t").split(".")
    return int(parts[2]) if len(parts) > 2 else -1


def _uv_managed(minor: str) -> Path | None:
    """The uv-managed Python of ``minor`` already installed, if any (uv is asked; it downloads nothing)."""
    from uv import find_uv_bin  # the uv package only when a Python other than the host's is wanted

    try:
        proc = subprocess.run(
            [find_uv_bin(), "python", "find", "--python-preference", "only-managed", "--no-python-downloads", minor],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = proc.stdout.strip()
    return Path(path) if proc.returncode == 0 and path else None


def _runs_as(candidate: Path) -> str | None:
    """The minor version ``candidate`` runs as, or None when it is missing or does not run (probed once)."""
    if candidate not in _probed:
        version = None
        if os.access(candidate, os.X_OK) and candidate.is_file():
            try:
                proc = subprocess.run(
                    [str(candidate), "-c", _PROBE],
                    capture_output=True,
                    text=True,
                    timeout=_PROBE_TIMEOUT_S,
                    env={**os.environ, "PYTHONNOUSERSITE": "1"},
                    stdin=subprocess.DEVNULL,
                )
                version = proc.stdout.strip() if proc.returncode == 0 else None
            except (OSError, subprocess.TimeoutExpired):
                version = None
        _probed[candidate] = version
    return _probed[candidate]
