"""AutoML job submission: validate, check the compute is a cluster, record, start the orchestrator.

The registry (:mod:`emulator.kinds`) hands ``type: automl`` specs here. As on Azure ML an AutoML job
needs a compute cluster; anything else is refused at submit with nothing recorded. The trial
script (:mod:`emulator.automl.trial`) is copied into the job's folder once, at submit, and every
trial (a child command job on the cluster) runs that copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import config
from emulator.automl import trial
from emulator.automl.spec import normalize_automl_job
from emulator.compute import service as compute
from emulator.errors import ValidationError
from emulator.jobs import submission
from emulator.runtime.base import check_runtime
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import AutoMLJobSpec, JobRecord

ORCHESTRATOR = "emulator.automl.orchestrator"
TRIAL_SCRIPT = "automl_trial.py"
#: the curated environment AutoML trials run in (amlemu's own interpreter on the process runtime)
TRIAL_ENVIRONMENT = "azureml:AzureML-ai-ml-automl@latest"


def require_cluster(store: WorkspaceStore, name: str | None) -> None:
    """AutoML runs on a compute cluster only, as on Azure ML."""
    how = (
        "Create one with `amlemu compute create --name cpu-cluster --type amlcompute --max-instances 2` "
        "(or AmlCompute(...) in Python) and set compute: azureml:cpu-cluster."
    )
    if name is None:
        raise ValidationError(f"An AutoML job needs a compute cluster, as on Azure ML; this one has no compute. {how}")
    record = compute.get(store, name)
    if record["type"] != "amlcompute":
        kind = {"computeinstance": "a compute instance", "kubernetes": "an attached Kubernetes cluster"}.get(
            record["type"], record["type"]
        )
        raise ValidationError(
            f"An AutoML job needs a compute cluster (AmlCompute), as on Azure ML; '{name}' is {kind}. {how}"
        )
    compute.placement(store, name, 1)


def submit_automl(store: WorkspaceStore, data: dict[str, Any], base_path: Path) -> JobRecord[AutoMLJobSpec]:
    """Validate an AutoML job, record it and start its orchestrator; everything is checked first."""
    spec = normalize_automl_job(data, Path(base_path), store)
    spec["compute"] = submission.resolve_compute(store, spec["compute"])
    require_cluster(store, spec["compute"])
    check_runtime(config.runtime_name())
    submission.name_job(spec)
    spec["base_path"] = str(Path(base_path).resolve())

    def fill(staging: Path) -> None:
        (staging / "trial_code").mkdir()
        shutil.copy2(trial.__file__, staging / "trial_code" / TRIAL_SCRIPT)

    return submission.record_and_start(store, spec, "automl", fill, orchestrator=ORCHESTRATOR)
