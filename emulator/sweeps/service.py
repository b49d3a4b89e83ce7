"""Sweep job submission: validate, snapshot the trial's code, record, start the orchestrator.

``emulator.jobs.service.submit`` hands ``type: sweep`` specs here. The sweep is recorded as a
parent job (type ``sweep``) whose detached orchestrator (:mod:`emulator.sweeps.orchestrator`)
is started like a command job's supervisor, so reads notice a lost orchestrator and ``cancel``
reaches it. The trial's code is snapshotted once, at submission, as Azure ML does; every trial
copies that snapshot.
"""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from emulator import config
from emulator.environments import registry as environments
from emulator.jobs import service as jobs
from emulator.jobs.naming import generate_job_name
from emulator.runtime.base import check_runtime
from emulator.store import WorkspaceStore
from emulator.sweeps.spec import normalize_sweep_job

ORCHESTRATOR = "emulator.sweeps.orchestrator"


def submit_sweep(store: WorkspaceStore, data: dict[str, Any], base_path: Path) -> dict[str, Any]:
    """Validate a sweep job, record it and start its orchestrator; everything is checked first."""
    spec = normalize_sweep_job(data, Path(base_path))
    spec["compute"] = jobs._resolve_compute(store, spec["compute"])
    environments.resolve(store, spec["trial"]["environment"], Path(base_path))  # fails now, not in every trial
    check_runtime(config.runtime_name())
    name = spec["name"] or generate_job_name()
    spec["name"] = name
    spec["experiment_name"] = spec["experiment_name"] or Path.cwd().name or "Default"
    spec["display_name"] = spec["display_name"] or name
    spec["created_by"] = getpass.getuser()
    spec["base_path"] = str(Path(base_path).resolve())  # trials resolve inline environments' files from it

    jobs_root = store.root / "jobs"
    jobs_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=jobs_root))
    try:
        code = spec["trial"]["code"]
        if code:
            snapshot = staging / "snapshot"
            if Path(code).is_dir():
                shutil.copytree(code, snapshot, ignore=jobs._snapshot_ignore, symlinks=True)
            else:
                snapshot.mkdir()
                shutil.copy2(code, snapshot)
            spec["trial"]["source_code"] = code
            spec["trial"]["code"] = str(store.job_dir(name) / "snapshot")
        for sub in ("artifacts/user_logs", "artifacts/system_logs"):
            (staging / sub).mkdir(parents=True, exist_ok=True)
        store.insert_job({"name": name, "type": "sweep", "experiment_name": spec["experiment_name"],
                          "parent_job_name": None, "status": "NotStarted", "spec": spec,
                          "created_at": time.time()})
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.replace(staging, store.job_dir(name))
    jobs._start_supervisor(store, name, module=ORCHESTRATOR)
    return store.get_job(name)
