"""Staging folders: a new record's files are built in one, then moved into place.

A staging folder is named ``.staging-<pid>-<random>``, after the process filling it, so that
``amlemu system prune`` can tell one left behind by a process that died (a ``kill -9`` in the
middle of ``model create`` copying a large folder) from one a live process is still filling.
Folders of the older shapes (``.staging.*`` under a model, ``.<job>.*`` under ``jobs``,
``.code.*`` under a deployment) carry no pid: they count as stale once an hour old.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PREFIX = ".staging-"
#: an old-style staging folder (no pid in its name) is stale after this many seconds
LEGACY_AGE_S = 3600.0
_OWNED = re.compile(r"^\.staging-(\d+)-")


def make(parent: Path) -> Path:
    """A new, empty staging folder in ``parent`` (created if missing), named after this process."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _is_stale(path: Path, legacy: re.Pattern, now: float) -> bool:
    if not path.is_dir() or path.is_symlink():
        return False
    owned = _OWNED.match(path.name)
    if owned:
        return not _pid_alive(int(owned.group(1)))
    if legacy.match(path.name):
        try:
            return now - path.stat().st_mtime > LEGACY_AGE_S
        except OSError:
            return False
    return False


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else []
    except OSError:
        return []


def stale(workspace_root: Path) -> Iterator[Path]:
    """The staging folders of one workspace that no live process is filling."""
    now = time.time()
    none = re.compile(r"(?!)")
    places: list[tuple[Path, re.Pattern]] = [(workspace_root / "jobs", re.compile(r"^\.[A-Za-z0-9].*\..+"))]
    for kind in ("models", "environments", "datas"):
        places += [(p, re.compile(r"^\.staging\.")) for p in _children(workspace_root / kind)]
    for endpoint in _children(workspace_root / "endpoints"):
        places += [(p, re.compile(r"^\.code\.")) for p in _children(endpoint / "deployments")]
    places.append((workspace_root, none))
    for folder, legacy in places:
        for child in _children(folder):
            if child.name.startswith(".") and _is_stale(child, legacy, now):
                yield child
