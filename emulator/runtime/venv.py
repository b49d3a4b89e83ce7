"""The process runtime's cached virtualenvs, one per environment, keyed by a hash of what defines it.

Two jobs asking for the same environment at once share one build: the first
takes a file lock and builds, the second waits and then reuses it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from emulator import config
from emulator.errors import EmulatorError

READY = ".amlemu-ready"


def venv_key(requirements: list[str]) -> str:
    blob = json.dumps({"python": sys.version_info[:2], "requirements": sorted(requirements)})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def venvs_root() -> Path:
    return config.cache_dir() / "venvs"


def ensure_venv(requirements: list[str], log: Callable[[str], None] = print) -> Path:
    """The ``bin`` folder of a virtualenv with ``requirements``, built on first use."""
    root = venvs_root()
    root.mkdir(parents=True, exist_ok=True)
    key = venv_key(requirements)
    target = root / key
    if (target / READY).exists():
        (target / READY).touch()  # last use, for `amlemu system prune`
        return target / "bin"
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / READY).exists():
            return target / "bin"
        shutil.rmtree(target, ignore_errors=True)
        log(f"[amlemu] building environment {key} (first use; cached afterwards): {' '.join(requirements)}")
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, capture_output=True)
        if requirements:
            proc = subprocess.run(
                [
                    str(target / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--progress-bar",
                    "off",
                    *requirements,
                ],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                shutil.rmtree(target, ignore_errors=True)
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
                raise EmulatorError(
                    f"Building the environment failed: pip could not install "
                    f"{', '.join(requirements)}. Check the package names and versions in the "
                    f"conda_file.\npip said:\n{tail}",
                    code="EnvironmentBuildFailed",
                )
        (target / READY).write_text(json.dumps(requirements))
        log(f"[amlemu] environment {key} ready")
    return target / "bin"
