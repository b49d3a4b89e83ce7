"""Sweep job specs (CLI v2 ``type: sweep`` shape), validated before anything is recorded.

The trial is checked as the command job it will become (code folder, inputs, environment,
``${{inputs.x}}`` references) with every ``${{search_space.x}}`` filled by a placeholder, so a
sweep that is accepted can start every trial it samples.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.errors import NotEmulated, ValidationError
from emulator.jobs.spec import JOB_HEADER_FIELDS, check_job_fields, int_in_range, job_header, normalize_command_job
from emulator.store import WorkspaceStore
from emulator.sweeps import space as spaces
from emulator.sweeps.bayesian import SUPPORTED as BAYESIAN_TYPES
from emulator.sweeps.policies import POLICY_NAMES

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import SweepJobSpec, SweepLimits, SweepObjective

SWEEP_JOB_FIELDS = JOB_HEADER_FIELDS | {
    "trial",
    "inputs",
    "outputs",
    "search_space",
    "objective",
    "sampling_algorithm",
    "early_termination",
    "limits",
    "identity",
    "queue_settings",
    "resources",
    "parent_job_name",
}
TRIAL_FIELDS = {"type", "command", "code", "environment", "environment_variables", "distribution", "resources"}
SAMPLING = ("random", "grid", "bayesian")
MAX_TRIALS = 1000  # Azure ML's bound for max_total_trials and max_concurrent_trials
DEFAULT_TIMEOUT = 5184000  # Azure ML's default limits.timeout (60 days)
_SEARCH_REF = re.compile(r"\$\{\{\s*search_space\.([A-Za-z_]\w*)\s*\}\}")
_POLICY_FIELDS = {
    "bandit": {"slack_factor", "slack_amount"},
    "median_stopping": set(),
    "truncation_selection": {"truncation_percentage", "exclude_finished_jobs"},
}


def render_search_space(command: str, params: dict[str, Any]) -> str:
    """Substitute ``${{search_space.x}}`` with the sampled values."""

    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in params:
            raise ValidationError(
                f"The trial command refers to ${{{{search_space.{name}}}}}, but the sweep's search_space has no "
                f"'{name}' (defined: {', '.join(sorted(params)) or 'none'}). Add it or fix the name."
            )
        return str(params[name])

    return _SEARCH_REF.sub(sub, command)


def _sampling(data: Any) -> dict[str, Any]:
    if data is None:
        raise ValidationError(
            "The sweep needs a 'sampling_algorithm': random, grid or bayesian (or {type: random, seed: 42})."
        )
    algo = {"type": data} if isinstance(data, str) else dict(data) if isinstance(data, dict) else None
    if algo is None or str(algo.get("type", "")).lower() not in SAMPLING:
        raise ValidationError(
            f"sampling_algorithm must be one of {', '.join(SAMPLING)} (or a mapping with that 'type'); got {data!r}."
        )
    kind = str(algo["type"]).lower()
    allowed = {"type", "seed", "rule", "logbase"} if kind == "random" else {"type"}
    unknown = {k for k, v in algo.items() if v is not None} - allowed
    if unknown:
        why = " (bayesian sampling has no seed in Azure ML)" if kind == "bayesian" and "seed" in unknown else ""
        raise ValidationError(
            f"sampling_algorithm ({kind}) has unknown field(s) {', '.join(sorted(unknown))}"
            f"{why}; {kind} takes {', '.join(sorted(allowed))}."
        )
    out: dict[str, Any] = {"type": kind}
    if kind == "random":
        if algo.get("seed") is not None:
            out["seed"] = int_in_range("sampling_algorithm.seed", algo["seed"], 0)
        rule = str(algo.get("rule") or "random").lower()
        if rule not in ("random", "sobol"):
            raise ValidationError(f"sampling_algorithm.rule must be random or sobol; got {algo['rule']!r}.")
        out["rule"] = rule
        if algo.get("logbase") not in (None, "e"):
            raise NotEmulated("sampling_algorithm.logbase other than e", "Leave logbase out.")
    return out


def _objective(data: Any) -> SweepObjective:
    if not isinstance(data, dict) or not data.get("primary_metric") or not data.get("goal"):
        raise ValidationError(
            "The sweep needs an 'objective' with primary_metric (the metric the trials log "
            "with mlflow.log_metric) and goal (maximize or minimize)."
        )
    goal = str(data["goal"]).lower()
    if goal not in ("maximize", "minimize"):
        raise ValidationError(f"objective.goal must be maximize or minimize; got {data['goal']!r}.")
    return {"goal": goal, "primary_metric": str(data["primary_metric"])}


def _early_termination(data: Any) -> dict[str, Any] | None:
    if data is None:
        return None
    if not isinstance(data, dict) or str(data.get("type", "")).lower() not in POLICY_NAMES:
        raise ValidationError(f"early_termination.type must be one of {', '.join(POLICY_NAMES)}; got {data!r}.")
    kind = str(data["type"]).lower()
    allowed = {"type", "evaluation_interval", "delay_evaluation"} | _POLICY_FIELDS[kind]
    unknown = {k for k, v in data.items() if v is not None} - allowed
    if unknown:
        raise ValidationError(
            f"early_termination ({kind}) has unknown field(s) {', '.join(sorted(unknown))}; "
            f"{kind} takes {', '.join(sorted(allowed - {'type'}))}."
        )
    out: dict[str, Any] = {
        "type": kind,
        "evaluation_interval": int_in_range(
            "early_termination.evaluation_interval", data.get("evaluation_interval") or 0, 0
        ),
        "delay_evaluation": int_in_range("early_termination.delay_evaluation", data.get("delay_evaluation") or 0, 0),
    }
    if kind == "bandit":
        factor, amount = data.get("slack_factor") or 0, data.get("slack_amount") or 0
        for field, value in (("slack_factor", factor), ("slack_amount", amount)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValidationError(f"early_termination.{field} must be a number >= 0; got {value!r}.")
        if bool(factor) == bool(amount):
            raise ValidationError(
                "A bandit policy needs exactly one of slack_factor (a ratio, e.g. 0.1) or "
                "slack_amount (an absolute distance) greater than 0."
            )
        out["slack_factor" if factor else "slack_amount"] = float(factor or amount)
    if kind == "truncation_selection":
        if data.get("truncation_percentage") is None:
            raise ValidationError("A truncation_selection policy needs truncation_percentage (1 to 99).")
        out["truncation_percentage"] = int_in_range(
            "early_termination.truncation_percentage", data["truncation_percentage"], 1, 99
        )
    return out


def _limits(data: Any) -> SweepLimits:
    data = data or {}
    if not isinstance(data, dict):
        raise ValidationError(
            "limits must be a mapping (max_total_trials, max_concurrent_trials, timeout, trial_timeout)."
        )
    unknown = {k for k, v in data.items() if v is not None} - {
        "max_total_trials",
        "max_concurrent_trials",
        "timeout",
        "trial_timeout",
        "type",
    }
    if unknown:
        raise ValidationError(
            f"limits has unknown field(s) {', '.join(sorted(unknown))}; use max_total_trials, "
            "max_concurrent_trials, timeout, trial_timeout."
        )

    def get(key: str, low: int, high: int | None = None) -> int | None:
        value = data.get(key)
        return None if value is None else int_in_range(f"limits.{key}", value, low, high)

    total, concurrent = get("max_total_trials", 1, MAX_TRIALS), get("max_concurrent_trials", 1, MAX_TRIALS)
    timeout = get("timeout", 1)
    return {
        "max_total_trials": MAX_TRIALS if total is None else total,
        "max_concurrent_trials": concurrent,
        "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
        "trial_timeout": get("trial_timeout", 1),
    }


def normalize_sweep_job(data: dict[str, Any], base_path: Path, store: WorkspaceStore | None = None) -> SweepJobSpec:
    """Validate a sweep job and resolve its local paths (with the workspace ``store``: its data assets and
    datastore paths too).

    Raises:
        ValidationError: naming the field that is wrong and how to fix it.
    """
    name = check_job_fields(data, SWEEP_JOB_FIELDS, "sweep job")
    search_space = spaces.validate_space(data.get("search_space"))
    objective = _objective(data.get("objective"))
    sampling = _sampling(data.get("sampling_algorithm"))
    policy = _early_termination(data.get("early_termination"))
    if sampling["type"] == "grid":
        bad = [f"{n} ({e['type']})" for n, e in search_space.items() if e["type"] != "choice"]
        if bad:
            raise ValidationError(
                f"Grid sampling takes only choice parameters; {', '.join(bad)} "
                f"{'is' if len(bad) == 1 else 'are'} not. Make them choices or use random sampling."
            )
    if sampling["type"] == "bayesian":
        bad = [f"{n} ({e['type']})" for n, e in search_space.items() if e["type"] not in BAYESIAN_TYPES]
        if bad:
            raise ValidationError(
                f"Bayesian sampling takes only choice, uniform and quniform parameters; "
                f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not. "
                "Change them or use random sampling."
            )
        if policy is not None:
            raise ValidationError(
                "Bayesian sampling does not support early termination (as in Azure ML): remove "
                "early_termination or use random or grid sampling."
            )
    limits = _limits(data.get("limits"))

    trial = data.get("trial")
    if not isinstance(trial, dict) or not trial.get("command"):
        raise ValidationError(
            "The sweep needs a 'trial' with at least a command, e.g. trial: {code: ./src, "
            "command: python train.py --lr ${{search_space.lr}}, environment: ...}."
        )
    unknown = set(trial) - TRIAL_FIELDS
    if unknown:
        raise ValidationError(
            f"Unknown field(s) {', '.join(sorted(unknown))} in the sweep's trial; valid fields: "
            f"{', '.join(sorted(TRIAL_FIELDS - {'type'}))}. Inputs and outputs go at the sweep's "
            "top level."
        )
    if trial.get("type", "command") != "command":
        raise ValidationError(f"The sweep's trial must be a command; got type {trial['type']!r}.")
    placeholder = {name: 0 for name in search_space}
    command = str(trial["command"])
    template = {
        "type": "command",
        "command": render_search_space(command, placeholder),
        "code": trial.get("code"),
        "environment": trial.get("environment"),
        "environment_variables": trial.get("environment_variables"),
        "inputs": data.get("inputs"),
        "outputs": data.get("outputs"),
        "resources": trial.get("resources"),
        "distribution": trial.get("distribution"),
        "compute": data.get("compute"),
    }
    checked = normalize_command_job({k: v for k, v in template.items() if v is not None}, base_path, store)
    return {
        **job_header(data, "sweep", name),
        "trial": {
            "command": command,
            "code": checked["code"],
            "environment": checked["environment"],
            "environment_variables": checked["environment_variables"],
            "resources": checked["resources"],
            "distribution": checked.get("distribution"),
        },
        "inputs": checked["inputs"],
        "outputs": checked["outputs"],
        "search_space": search_space,
        "objective": objective,
        "sampling_algorithm": sampling,
        "early_termination": policy,
        "limits": limits,
    }
