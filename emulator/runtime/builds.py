"""What the builds of an environment got here: the Python, the substitutions, where each build is.

Each runtime's build of an environment (a cached virtualenv, a job image; with or without a
deployment's serving packages) adds an entry to one small JSON file per environment, keyed by what
defines it (its requirements and the Python its conda file asks for), under ``$AMLEMU_HOME/cache/builds``.
``environment show`` reads it through :func:`build_record`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from emulator import config


def environment_key(requirements: Sequence[str], python: str | None) -> str:
    """The key of an environment as its record defines it (before any serving packages are added)."""
    blob = json.dumps({"python": python, "requirements": sorted(requirements)})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _path(requirements: Sequence[str], python: str | None) -> Path:
    return config.cache_dir() / "builds" / f"{environment_key(requirements, python)}.json"


def record(requirements: Sequence[str], python: str | None, build_id: str, entry: Mapping[str, Any]) -> None:
    """Add (or replace) the entry of build ``build_id`` (``process:<key>``, ``docker:<tag>``)."""
    path = _path(requirements, python)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        builds = json.loads(path.read_text()) if path.exists() else {}
        builds[build_id] = {**entry, "recorded_at": time.time()}
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps(builds, indent=1, sort_keys=True))
        staging.replace(path)


def build_record(resolved: Mapping[str, Any]) -> dict | None:
    """What the builds of a resolved environment (see ``registry.resolve``) got here, or None when it
    was never built (or needs no build: amlemu's own interpreter).

    Returns:
        ``{"python_requested", "substitutions": [lines], "builds": [{"runtime", "python",
        "substitutions", "venv" | "image", "with_serving_packages", "recorded_at", ...}]}``, the
        builds newest first and the substitutions those builds made, each once.
    """
    requirements = resolved.get("requirements")
    if not requirements:
        return None
    path = _path(requirements, resolved.get("python"))
    try:
        builds = list(json.loads(path.read_text()).values())
    except (OSError, ValueError):
        return None
    builds.sort(key=lambda b: b.get("recorded_at", 0), reverse=True)
    substitutions = list(dict.fromkeys(line for b in builds for line in b.get("substitutions", [])))
    return {"python_requested": resolved.get("python"), "substitutions": substitutions, "builds": builds}
