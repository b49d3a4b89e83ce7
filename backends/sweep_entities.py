"""Sweep jobs between azure-ai-ml entities and the engine's plain records.

``to_spec`` takes a ``SweepJob`` (``load_job`` of a ``type: sweep`` YAML, or built by hand)
or the ``Sweep`` node that ``command(...)(C=Uniform(...)).sweep(...)`` returns, and gives the
CLI v2 YAML-shaped dict that ``emulator.sweeps.spec`` validates. ``from_view`` gives a
``SweepJob`` back, built from the job's ``az ml job show`` view: status, id, creation context and
the best trial in its properties.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output, sweep
from azure.ai.ml.entities import CommandJob
from azure.ai.ml.entities._builders.sweep import Sweep
from azure.ai.ml.sweep import Objective, SweepJob, SweepJobLimits

from backends.command_entities import compute_name
from backends.entities import (
    header_spec,
    inline_environment,
    is_local_path,
    job_outputs,
    local_code,
    local_path,
    view_system_data,
)
from emulator.errors import NotEmulated
from emulator.store import WorkspaceStore

_LITERALS = ("string", "integer", "number", "boolean")


def _public(obj: Any) -> dict[str, Any]:
    """An SDK object's public attributes (a sweep distribution, a policy ...), None dropped."""
    if isinstance(obj, dict):
        return {k: v for k, v in obj.items() if v is not None}
    return {k: v for k, v in vars(obj).items() if not k.startswith("_") and v is not None}


def _input(value: Any, base: Path) -> Any:
    if isinstance(value, Input):
        if value.type in _LITERALS:
            return value.default
        value = {"type": value.type, "path": value.path, "mode": value.mode}
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None}
        if value.get("type") in _LITERALS:
            return value.get("default", value.get("value"))
        if value.get("path"):
            value["path"] = local_path(value["path"], base)
        return value
    return value


def to_spec(job: Any, base: Path) -> dict[str, Any]:
    """A sweep job entity as a ``type: sweep`` YAML dict with absolute local paths."""
    if isinstance(job, Sweep):
        job = job._to_job()  # ${{inputs.x}} of swept inputs become ${{search_space.x}}
    trial = job.trial
    if trial is None:
        raise NotEmulated("a sweep job without a trial", "Give the sweep a trial command.")
    distribution = getattr(trial, "distribution", None)
    if distribution is not None and not isinstance(distribution, dict):
        distribution = {k: v for k, v in vars(distribution).items() if v is not None}
    environment = inline_environment(trial.environment)
    code = local_code(trial.code, "trial code")
    code = str(code) if code is not None else None
    if code and is_local_path(code):
        code = str((base / code).resolve())
    resources = getattr(trial, "resources", None)
    instance_count = getattr(resources, "instance_count", None) if resources is not None else None
    outputs = job_outputs(job.outputs)
    sampling = job.sampling_algorithm
    sampling = sampling if isinstance(sampling, str) else _public(sampling) if sampling is not None else None
    limits = None
    if job.limits is not None:
        limits = {
            k: getattr(job.limits, k, None)
            for k in ("max_total_trials", "max_concurrent_trials", "timeout", "trial_timeout")
        }
        limits = {k: v for k, v in limits.items() if v is not None}
    spec = {
        **header_spec(job, "sweep"),
        "trial": {
            k: v
            for k, v in {
                "command": trial.command,
                "code": code,
                "environment": environment,
                "environment_variables": dict(trial.environment_variables or {}) or None,
                "resources": {"instance_count": instance_count} if instance_count else None,
                "distribution": distribution or None,
            }.items()
            if v is not None
        },
        "inputs": {k: _input(v, base) for k, v in (job.inputs or {}).items()},
        "outputs": outputs,
        "search_space": {k: _public(v) for k, v in (job.search_space or {}).items()},
        "objective": _public(job.objective) if job.objective is not None else None,
        "sampling_algorithm": sampling,
        "early_termination": _public(job.early_termination) if job.early_termination is not None else None,
        "limits": limits,
    }
    return {k: v for k, v in spec.items() if v is not None}


def _distribution(expr: dict[str, Any]):
    classes = {
        "choice": sweep.Choice,
        "randint": sweep.Randint,
        "uniform": sweep.Uniform,
        "quniform": sweep.QUniform,
        "loguniform": sweep.LogUniform,
        "qloguniform": sweep.QLogUniform,
        "normal": sweep.Normal,
        "qnormal": sweep.QNormal,
        "lognormal": sweep.LogNormal,
        "qlognormal": sweep.QLogNormal,
    }
    return classes[expr["type"]](**{k: v for k, v in expr.items() if k != "type"})


def _policy(policy: dict[str, Any] | None):
    if policy is None:
        return None

    cls = {
        "bandit": sweep.BanditPolicy,
        "median_stopping": sweep.MedianStoppingPolicy,
        "truncation_selection": sweep.TruncationSelectionPolicy,
    }[policy["type"]]
    return cls(**{k: v for k, v in policy.items() if k != "type"})


def _sampling(algo: dict[str, Any]):
    if algo["type"] == "random":
        return sweep.RandomSamplingAlgorithm(
            seed=algo.get("seed"), rule=algo["rule"] if algo.get("rule") != "random" else None
        )
    return sweep.GridSamplingAlgorithm() if algo["type"] == "grid" else sweep.BayesianSamplingAlgorithm()


def from_view(store: WorkspaceStore, record: dict[str, Any], view: dict[str, Any]):
    """A ``SweepJob`` from a sweep's view: status, id, creation context, best trial in properties."""
    trial = view["trial"]
    inputs = {
        k: Input(type=v["type"], path=v["path"], mode=v["mode"]) if isinstance(v, dict) else v
        for k, v in view["inputs"].items()
    }
    outputs = {k: Output(type=v["type"], mode=v["mode"]) for k, v in view["outputs"].items()}
    env = trial.get("environment")
    properties = dict(view["properties"])
    if record.get("error"):
        properties["amlemu.error"] = record["error"]
    limits = view["limits"]
    return SweepJob(
        name=view["name"],
        display_name=view["display_name"],
        description=view.get("description"),
        tags=view["tags"],
        properties=properties,
        experiment_name=view["experiment_name"],
        compute=compute_name(view),
        inputs=inputs,
        outputs=outputs,
        trial=CommandJob(
            command=trial["command"],
            code=trial.get("code"),
            environment=env if isinstance(env, str) else None,
            environment_variables=trial.get("environment_variables"),
        ),
        search_space={k: _distribution(v) for k, v in view["search_space"].items()},
        objective=Objective(goal=view["objective"]["goal"], primary_metric=view["objective"]["primary_metric"]),
        sampling_algorithm=_sampling(view["sampling_algorithm"]),
        early_termination=_policy(view.get("early_termination")),
        limits=SweepJobLimits(
            max_total_trials=limits.get("max_total_trials"),
            max_concurrent_trials=limits.get("max_concurrent_trials"),
            timeout=limits.get("timeout"),
            trial_timeout=limits.get("trial_timeout"),
        ),
        status=view["status"],
        creation_context=view_system_data(view["creation_context"]),
        id=view["id"],
    )
