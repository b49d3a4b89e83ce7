"""AutoML job specs (CLI v2 ``type: automl`` shape, tabular tasks), validated before anything is recorded.

Names are accepted as Azure ML spells them in YAML and in the SDK: primary metrics as
``AUC_weighted``, ``auc_weighted`` or ``AUCWeighted``; algorithms as ``RandomForest`` or
``random_forest``. The normalised spec holds the canonical spellings, the training algorithms
that will run (allowed minus blocked, in trial order) and the validation scheme.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.automl.trial import (
    ALGORITHMS,
    BLOCKABLE_TRANSFORMERS,
    FEATURE_TYPES,
    IMPUTER_STRATEGIES,
    PRIMARY_METRICS,
    UNAVAILABLE,
    table_files,
)
from emulator.errors import NotEmulated, ValidationError
from emulator.jobs.spec import JOB_HEADER_FIELDS, check_job_fields, int_in_range, job_header, normalize_input
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import AutoMLJobSpec, JobInput

TASKS = ("classification", "regression")
AUTOML_JOB_FIELDS = JOB_HEADER_FIELDS | {
    "task",
    "primary_metric",
    "target_column_name",
    "training_data",
    "validation_data",
    "test_data",
    "n_cross_validations",
    "validation_data_size",
    "weight_column_name",
    "limits",
    "training",
    "featurization",
    "log_verbosity",
    "outputs",
    "positive_label",
    "identity",
    "resources",
    "queue_settings",
}
LIMIT_FIELDS = {
    "max_trials",
    "max_concurrent_trials",
    "timeout_minutes",
    "trial_timeout_minutes",
    "enable_early_termination",
    "exit_score",
    "max_cores_per_trial",
    "max_nodes",
}
TRAINING_FIELDS = {
    "enable_onnx_compatible_models",
    "allowed_training_algorithms",
    "blocked_training_algorithms",
    "enable_model_explainability",
    "enable_stack_ensemble",
    "enable_vote_ensemble",
    "enable_dnn_training",
    "training_mode",
    "stack_ensemble_settings",
    "ensemble_model_download_timeout",
}
FEATURIZATION_FIELDS = {
    "mode",
    "blocked_transformers",
    "column_name_and_types",
    "transformer_params",
    "dataset_language",
    "enable_dnn_featurization",
    "type",
}
FEATURIZATION_MODES = ("auto", "off", "custom")
MAX_TRIALS = 1000
DEFAULT_TIMEOUT_MINUTES = 6 * 24 * 60  # Azure ML's default experiment timeout (6 days)


def _key(name: Any) -> str:
    return str(getattr(name, "value", name)).replace("_", "").replace("-", "").lower()


def primary_metric(task: str, name: Any) -> tuple[str, str]:
    """The canonical name of ``task``'s primary metric ``name`` and its goal."""
    known = PRIMARY_METRICS[task]
    if name is None:  # Azure's defaults
        name = "accuracy" if task == "classification" else "normalized_root_mean_squared_error"
    for metric, goal in known.items():
        if _key(metric) == _key(name):
            return metric, goal
    raise ValidationError(
        f"primary_metric {getattr(name, 'value', name)!r} is not a {task} metric; use one of {', '.join(known)}."
    )


def _algorithm(task: str, name: Any, field: str) -> str:
    known = {_key(a): a for a in [*ALGORITHMS[task], *UNAVAILABLE[task]]}
    if _key(name) not in known:
        raise ValidationError(
            f"training.{field} has {getattr(name, 'value', name)!r}, not a {task} algorithm; "
            f"known: {', '.join(sorted(known.values()))}."
        )
    return known[_key(name)]


def select_algorithms(task: str, allowed: list | None, blocked: list | None) -> list[str]:
    """The algorithms the trials will use, in trial order: allowed (default: all) minus blocked.

    Raises:
        ValidationError: an unknown name, or nothing left to run.
    """
    allowed_set = {_algorithm(task, a, "allowed_training_algorithms") for a in allowed or []}
    blocked_set = {_algorithm(task, a, "blocked_training_algorithms") for a in blocked or []}
    chosen = [a for a in ALGORITHMS[task] if (not allowed_set or a in allowed_set) and a not in blocked_set]
    if not chosen:
        skipped = sorted(allowed_set & UNAVAILABLE[task])
        why = (
            (
                f" ({', '.join(skipped)} {'is' if len(skipped) == 1 else 'are'} not run by amlemu: their packages "
                "are not part of it)"
            )
            if skipped
            else ""
        )
        raise ValidationError(
            f"No {task} algorithm is left to try: allowed_training_algorithms and "
            f"blocked_training_algorithms exclude every one{why}. Runnable: "
            f"{', '.join(ALGORITHMS[task])}."
        )
    return chosen


def _limits(data: Any) -> dict[str, Any]:
    data = {k: v for k, v in (data or {}).items() if v is not None}
    unknown = set(data) - LIMIT_FIELDS
    if unknown:
        raise ValidationError(
            f"limits has unknown field(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(LIMIT_FIELDS))}."
        )
    max_trials = int_in_range("limits.max_trials", data.get("max_trials", MAX_TRIALS), 1, MAX_TRIALS)
    concurrent = int_in_range("limits.max_concurrent_trials", data.get("max_concurrent_trials", 1), 1, MAX_TRIALS)
    if concurrent > max_trials:
        raise ValidationError(
            f"limits.max_concurrent_trials ({concurrent}) is more than limits.max_trials ({max_trials}); lower it."
        )
    out = {
        "max_trials": max_trials,
        "max_concurrent_trials": concurrent,
        "timeout_minutes": int_in_range(
            "limits.timeout_minutes", data.get("timeout_minutes", DEFAULT_TIMEOUT_MINUTES), 1
        ),
        "trial_timeout_minutes": None,
        "exit_score": None,
        "enable_early_termination": data.get("enable_early_termination", True),
    }
    if not isinstance(out["enable_early_termination"], bool):
        raise ValidationError(
            f"limits.enable_early_termination must be true or false; got {out['enable_early_termination']!r}."
        )
    for key in ("max_cores_per_trial", "max_nodes"):  # kept and shown; one trial runs on one node here
        if key in data:
            out[key] = int_in_range(f"limits.{key}", data[key], -1 if key == "max_cores_per_trial" else 1)
    if data.get("trial_timeout_minutes") is not None:
        out["trial_timeout_minutes"] = int_in_range("limits.trial_timeout_minutes", data["trial_timeout_minutes"], 1)
    if data.get("exit_score") is not None:
        if isinstance(data["exit_score"], bool) or not isinstance(data["exit_score"], (int, float)):
            raise ValidationError(f"limits.exit_score must be a number; got {data['exit_score']!r}.")
        out["exit_score"] = float(data["exit_score"])
    return out


def _data(
    name: str, value: Any, base_path: Path, target: str, store: WorkspaceStore | None = None
) -> tuple[JobInput, list[str]]:
    """A training or validation input (an MLTable folder or a CSV file holding the target column), and its header."""
    if isinstance(value, dict) and value.get("type") not in (None, "mltable", "uri_file"):
        raise ValidationError(f"{name} must be an mltable folder or a uri_file CSV; got type {value['type']!r}.")
    data = normalize_input(name, value, base_path, store)
    if data["type"] == "literal":
        raise ValidationError(f"{name} must be Input(type='mltable', path=...) or a uri_file CSV, not a literal.")
    try:
        files, delimiter = table_files(data["path"])
        with open(files[0], newline="") as f:
            header = next(csv.reader(f, delimiter=delimiter), [])
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{name} cannot be read: {exc}") from None
    if target not in header:
        raise ValidationError(
            f"target_column_name '{target}' is not a column of {name} ({files[0]}: "
            f"{', '.join(header) or 'no header'}). Fix target_column_name or the data."
        )
    return {"type": data["type"], "path": data["path"], "mode": "ro_mount"}, header


def _canonical(where: str, name: Any, known: tuple[str, ...]) -> str:
    """``name`` as Azure spells it among ``known`` (``one_hot_encoder`` and ``OneHotEncoder`` are one name)."""
    spelled = {_key(k): k for k in known}
    if _key(name) not in spelled:
        raise ValidationError(f"{where} has {getattr(name, 'value', name)!r}; use one of {', '.join(known)}.")
    return spelled[_key(name)]


def _featurization(data: Any, columns: list[str], target: str) -> dict[str, Any]:
    """The ``featurization`` section: mode, blocked transformers, column types and imputer parameters.

    ``columns`` is the training data's header: every column named must be a feature column of it.
    """
    data = {k: v for k, v in (data or {}).items() if v is not None}
    unknown = set(data) - FEATURIZATION_FIELDS
    if unknown:
        raise ValidationError(
            f"featurization has unknown field(s) {', '.join(sorted(unknown))}; use "
            f"{', '.join(sorted(FEATURIZATION_FIELDS - {'type'}))}."
        )
    mode = str(getattr(data.get("mode"), "value", data.get("mode")) or "auto").lower()
    if mode not in FEATURIZATION_MODES:
        raise ValidationError(f"featurization.mode must be {', '.join(FEATURIZATION_MODES)}; got {data['mode']!r}.")
    blocked = [
        _canonical("featurization.blocked_transformers", t, BLOCKABLE_TRANSFORMERS)
        for t in data.get("blocked_transformers") or []
    ]
    types = data.get("column_name_and_types") or {}
    if not isinstance(types, dict):
        raise ValidationError(
            "featurization.column_name_and_types must map column names to Numeric, Categorical, "
            f"Text or DateTime; got {types!r}."
        )
    features = [c for c in columns if c != target]

    def check_column(where: str, column: Any) -> str:
        if column not in features:
            why = "is the target column" if column == target else "is not a column of training_data"
            raise ValidationError(f"{where} names {column!r}, which {why}; use one of {', '.join(features)}.")
        return str(column)

    types = {
        check_column("featurization.column_name_and_types", c): _canonical(
            f"featurization.column_name_and_types.{c}", t, FEATURE_TYPES
        )
        for c, t in types.items()
    }
    if "DateTime" in types.values():
        raise NotEmulated(
            "featurization column type DateTime",
            "Set the column to Categorical or Text, or derive numeric parts (year, month, ...) in the data.",
        )
    params: dict[str, list[dict[str, Any]]] = {}
    for key, entries in (data.get("transformer_params") or {}).items():
        name = _canonical("featurization.transformer_params", key, ("Imputer", "TfIdf", "HashOneHotEncoder"))
        if name != "Imputer":
            raise NotEmulated(
                f"featurization.transformer_params {name}",
                "Only Imputer parameters are used by amlemu; remove the others.",
            )
        for entry in entries or []:
            fields = getattr(entry, "fields", None) if not isinstance(entry, dict) else entry.get("fields")
            given = getattr(entry, "parameters", None) if not isinstance(entry, dict) else entry.get("parameters")
            given = {k: v for k, v in (given or {}).items() if v is not None}
            strategies = sorted({s for kinds in IMPUTER_STRATEGIES.values() for s in kinds})
            if set(given) - {"strategy"} or given.get("strategy", "mean") not in strategies:
                raise ValidationError(
                    f"featurization.transformer_params Imputer parameters {given!r} are not "
                    f"used by amlemu; give {{strategy: {' | '.join(strategies)}}}."
                )
            if not fields:
                raise ValidationError(
                    "featurization.transformer_params Imputer entries need fields: the columns to impute."
                )
            params.setdefault(name, []).append(
                {
                    "fields": [check_column("featurization.transformer_params Imputer", f) for f in fields],
                    "parameters": given,
                }
            )
    if mode == "off" and (blocked or types or params):
        raise ValidationError(
            "featurization mode off does not featurize, so blocked_transformers, "
            "column_name_and_types and transformer_params have no effect: remove them, or use "
            "mode auto or custom."
        )
    return {"mode": mode, "blocked_transformers": blocked, "column_name_and_types": types, "transformer_params": params}


def _validation(data: dict[str, Any]) -> dict[str, Any]:
    """Azure's rule: validation data if given, else n_cross_validations, else validation_data_size, else by size."""
    folds, size = data.get("n_cross_validations"), data.get("validation_data_size")
    if data.get("validation_data") is not None:
        if folds not in (None, "auto") or size is not None:
            raise ValidationError("Give validation_data, n_cross_validations or validation_data_size, not several.")
        return {"type": "validation_data"}
    if folds not in (None, "auto"):
        if size is not None:
            raise ValidationError("Give n_cross_validations or validation_data_size, not both.")
        return {"type": "cv", "folds": int_in_range("n_cross_validations", folds, 2, 1000)}
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size < 1:
            raise ValidationError(f"validation_data_size must be a fraction between 0 and 1; got {size!r}.")
        return {"type": "holdout", "size": float(size)}
    return {"type": "auto"}  # decided by the row count when the trials start


def normalize_automl_job(data: dict[str, Any], base_path: Path, store: WorkspaceStore | None = None) -> AutoMLJobSpec:
    """Validate an AutoML job and resolve its local data paths (with the workspace ``store``: data assets and
    datastore paths too).

    Raises:
        ValidationError: naming the field that is wrong and how to fix it.
    """
    name = check_job_fields(data, AUTOML_JOB_FIELDS, "AutoML job")
    task = str(getattr(data.get("task"), "value", data.get("task")) or "").lower()
    if task not in TASKS:
        other = " (forecasting, image and NLP tasks are not emulated yet)" if task else ""
        raise (
            NotEmulated(f"AutoML task '{task}'", f"amlemu runs tasks {', '.join(TASKS)}.")
            if task
            else ValidationError(f"The AutoML job needs a 'task': {' or '.join(TASKS)}{other}.")
        )
    metric, goal = primary_metric(task, data.get("primary_metric"))
    target = data.get("target_column_name")
    if not target:
        raise ValidationError("The AutoML job needs target_column_name: the column to predict.")
    if data.get("training_data") is None:
        raise ValidationError(
            "The AutoML job needs training_data: Input(type='mltable', path='./my-mltable') "
            "(a folder with an MLTable file) or a uri_file CSV."
        )
    if data.get("test_data") is not None:
        raise NotEmulated("AutoML test_data", "Leave test_data out; the best model is scored on validation data.")
    training = {k: v for k, v in (data.get("training") or {}).items() if v is not None}
    unknown = set(training) - TRAINING_FIELDS
    if unknown:
        raise ValidationError(
            f"training has unknown field(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(TRAINING_FIELDS))}."
        )
    algorithms = select_algorithms(
        task, training.get("allowed_training_algorithms"), training.get("blocked_training_algorithms")
    )
    training_data, columns = _data("training_data", data["training_data"], base_path, str(target), store)
    inputs = {"training_data": training_data}
    if data.get("validation_data") is not None:
        inputs["validation_data"] = _data("validation_data", data["validation_data"], base_path, str(target), store)[0]
    featurization = _featurization(data.get("featurization"), columns, str(target))
    return {
        **job_header(data, "automl", name),
        "task": task,
        "primary_metric": metric,
        "goal": goal,
        "target_column_name": str(target),
        "weight_column_name": data.get("weight_column_name"),
        "positive_label": data.get("positive_label"),
        "inputs": inputs,
        "validation": _validation(data),
        "limits": _limits(data.get("limits")),
        "training": {
            "algorithms": algorithms,
            "allowed_training_algorithms": [
                _algorithm(task, a, "allowed_training_algorithms")
                for a in training.get("allowed_training_algorithms") or []
            ],
            "blocked_training_algorithms": [
                _algorithm(task, a, "blocked_training_algorithms")
                for a in training.get("blocked_training_algorithms") or []
            ],
            "enable_onnx_compatible_models": bool(training.get("enable_onnx_compatible_models")),
            "enable_model_explainability": bool(training.get("enable_model_explainability")),
        },
        "featurization": featurization,
        "outputs": {},
    }
