"""``amlemu system prune``: remove what amlemu left behind, and only that.

Containers are matched by amlemu's own labels (``com.amlemu.kind``) and the current
``AMLEMU_HOME`` (``com.amlemu.home``); images, a cache shared by every home, by their kind;
virtualenvs live in the machine's environment cache (shared by every home: those unused for
``venv_days``, never one being built); staging folders (a model, job or deployment
being copied in when its process was killed) live in the workspaces of the current
``AMLEMU_HOME``, and only those no live process is filling are removed
(:mod:`emulator.store.staging`). Nothing else is touched.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from pathlib import Path

from emulator import config
from emulator.runtime.engine import HOME_LABEL, LABEL, docker_client, engine_answers, home_label
from emulator.runtime.venv import READY, venvs_root
from emulator.store import staging

RUN_KINDS = ("job", "deployment", "node")


def prune(*, all_images: bool = False, venv_days: float = 30.0) -> dict[str, list[str]]:
    """Stopped amlemu containers, unused amlemu images (dangling, or all with ``all_images``),
    and virtualenvs unused for ``venv_days`` days."""
    removed: dict[str, list[str]] = {"containers": [], "images": [], "virtualenvs": [], "staging": []}
    if engine_answers():
        client = docker_client()
        home = home_label()
        for status in ("exited", "created", "dead"):
            for container in client.containers.list(all=True, ignore_removed=True, filters={"status": status}):
                # only the kinds amlemu runs (the base image's own "base" label is inherited by
                # any container made from it, so it proves nothing)
                if container.labels.get(f"{LABEL}.kind") not in RUN_KINDS:
                    continue
                if container.labels.get(HOME_LABEL, home) != home:  # another AMLEMU_HOME's (unlabelled: older amlemu)
                    continue
                container.remove(force=True)
                removed["containers"].append(container.name)
        filters = {"label": f"{LABEL}.kind=environment"}
        if not all_images:
            filters["dangling"] = True
        in_use = {c.image.id for c in client.containers.list(all=True, ignore_removed=True)}
        for image in client.images.list(filters=filters):
            if image.id not in in_use and (image.labels or {}).get(f"{LABEL}.kind") == "environment":
                client.images.remove(image.id, force=False)
                removed["images"].append(image.tags[0] if image.tags else image.short_id)
    cutoff = time.time() - venv_days * 86400
    # the machine's cache, and where older amlemu kept them, under this AMLEMU_HOME
    roots = dict.fromkeys((venvs_root(), config.cache_dir() / "venvs"))
    for venv in [v for root in roots if root.is_dir() for v in sorted(root.iterdir())]:
        marker = venv / READY
        if venv.is_dir() and (not marker.exists() or marker.stat().st_mtime <= cutoff):
            with open(f"{venv}.lock", "a") as lock:
                try:  # a builder holds this lock while it fills the folder: a venv being built is not stale
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                shutil.rmtree(venv, ignore_errors=True)
                Path(f"{venv}.lock").unlink(missing_ok=True)
            removed["virtualenvs"].append(venv.name)
    removed["staging"] = prune_staging()
    return removed


def prune_staging() -> list[str]:
    """Remove the stale staging folders of every workspace under the current ``AMLEMU_HOME``;
    returns them relative to the home."""
    home = config.home()
    workspaces = home / "workspaces"
    removed = []
    for workspace in sorted(workspaces.iterdir()) if workspaces.is_dir() else []:
        if not workspace.is_dir() or workspace.is_symlink():
            continue
        for folder in staging.stale(workspace):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder.relative_to(home)))
    return removed
