"""Where a job's outputs are, and copying them out as ``az ml job download`` lays them out."""

from __future__ import annotations

import shutil
from pathlib import Path

from emulator.errors import ValidationError
from emulator.jobs.lifecycle import get
from emulator.jobs.spec import job_output_folder
from emulator.naming import confined_join
from emulator.store import WorkspaceStore
from emulator.store.db import TERMINAL


def output_dir(store: WorkspaceStore, name: str, output: str) -> Path:
    """The local folder of a job output (``artifacts`` is the default one)."""
    return job_output_folder(store, store.get_job(name), output)


def download(
    store: WorkspaceStore, name: str, download_path: Path, output_name: str | None = None, all: bool = False
) -> Path:
    """Copy a job's outputs locally, laid out as ``az ml job download`` does."""
    job = get(store, name)
    if job["status"] not in TERMINAL:
        raise ValidationError(
            f"Job '{name}' is {job['status']}; its outputs are available once it "
            f"ends. Wait with `amlemu job stream --name {name}`."
        )
    download_path = Path(download_path)
    targets: list[tuple[Path, Path]] = []
    if output_name in (None, "artifacts", "default") or all:
        targets.append((output_dir(store, name, "artifacts"), confined_join(download_path, "artifacts")))
    names = (
        list(job["spec"]["outputs"])
        if all
        else ([output_name] if output_name not in (None, "artifacts", "default") else [])
    )
    for out in names:
        targets.append((output_dir(store, name, out), confined_join(download_path, "named-outputs", out)))
    for src, dst in targets:
        if src.is_file():  # a uri_file output written to a datastore path
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / src.name)
        elif src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
    return download_path
