"""All settings in one place, read when used (never at import).

Public environment variables share the ``AMLEMU_`` prefix:

- ``AMLEMU_HOME``: the state directory (default ``~/.amlemu``).
- ``AMLEMU_WORKSPACE``: the workspace name (default ``default``).
- ``AMLEMU_BACKEND``: ``local`` (default) or ``azure``.
- ``AMLEMU_RUNTIME``: ``process`` (default), ``docker`` or ``auto``.
- ``AMLEMU_SNAPSHOT_MAX_MB`` and ``AMLEMU_SNAPSHOT_MAX_FILES``: the most a job's or deployment's code
  snapshot may hold (default 300 MB and 2000 files, Azure ML's v1 limits); ``.amlignore`` (else
  ``.gitignore``) in the code folder leaves files out (see :mod:`emulator.jobs.snapshot`).
- ``AMLEMU_CONTAINER_MEMORY``: the memory limit of a container with no node size to bound it (a job
  off-cluster, a deployment replica): bytes, or with a unit (``512m``, ``4g``); ``0`` for none.
  Default ``4g``. A job on a compute cluster or instance gets its VM size's memory instead.
- ``AMLEMU_CONTAINER_PIDS``: the most processes and threads a container may hold (``pids_limit``);
  ``0`` for no limit. Default ``4096``.

The state directory holds the workspace stores and their keys: amlemu creates it (and each
workspace folder) 0700, so no other local user can read anything below it.

A config file can set the same keys (lower case, without the prefix):
``./.amlemu.yml`` first, then ``$AMLEMU_HOME/config.yml``.
"""

from __future__ import annotations

import os
from pathlib import Path

from emulator import naming

SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "amlemu"


def home() -> Path:
    return Path(os.environ.get("AMLEMU_HOME") or Path.home() / ".amlemu").expanduser()


def private_dir(path: Path) -> Path:
    """``path`` and any missing parent folders, created 0700 (with the mode: never open, not even briefly)."""
    path, missing = Path(path), []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
    return path


def state_home() -> Path:
    """The state directory, created 0700 if missing (everything amlemu keeps goes below it)."""
    return private_dir(home())


def _config_files() -> list[Path]:
    return [Path.cwd() / ".amlemu.yml", home() / "config.yml"]


def file_setting(key: str) -> str | None:
    """A setting from the first config file that has it, else None."""
    for path in _config_files():
        if path.is_file():
            import yaml  # only a config file needs PyYAML (~20 ms at start)

            data = yaml.safe_load(path.read_text()) or {}
            if isinstance(data, dict) and data.get(key) is not None:
                return str(data[key])
    return None


def setting(key: str, default: str | None = None) -> str | None:
    """``AMLEMU_<KEY>`` from the environment, then the config files, then ``default``."""
    value = os.environ.get(f"AMLEMU_{key.upper()}")
    if value:
        return value
    value = file_setting(key.lower())
    return value if value is not None else default


def workspace_name() -> str:
    return setting("workspace", "default")


def workspace_dir(name: str | None = None) -> Path:
    """The folder of workspace ``name`` (the configured one by default), refused unless the name
    follows Azure's workspace rule and the folder stays under ``$AMLEMU_HOME/workspaces``."""
    name = naming.check(
        "workspace", name or workspace_name(), "(from -w/--workspace-name, AMLEMU_WORKSPACE or the config file)"
    )
    return naming.confined_join(home() / "workspaces", name)


def cache_dir() -> Path:
    return home() / "cache"


def machine_cache() -> Path:
    """The folder of what every ``AMLEMU_HOME`` on this machine shares (wheels, uv's cache, virtualenvs):
    ``AMLEMU_MACHINE_CACHE``, else ``$XDG_CACHE_HOME/amlemu`` (``~/.cache/amlemu``)."""
    configured = setting("machine_cache")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "amlemu"


def runtime_name() -> str:
    return setting("runtime", "process")
