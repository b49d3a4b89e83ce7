"""One AutoML trial: fit one scikit-learn algorithm with one setting, score it, save the model.

Self-contained on purpose: the AutoML orchestrator copies this file into each trial's code
snapshot and runs it as a child command job (``python automl_trial.py``) in the trial's
environment, where ``emulator`` may not be importable (the docker runtime). The orchestrator and
the spec validation import the same catalogue and metric tables from here, so both sides agree.

The trial reads its settings from ``AMLEMU_AUTOML_TRIAL`` (JSON: task, algorithm, settings,
target column, primary metric, validation scheme, featurization, onnx flag) and its data paths
from the command line; it featurizes the columns (:func:`plan_featurization`: a ColumnTransformer
in front of the algorithm), logs every metric of its task with MLflow (Azure's names, e.g.
``accuracy``, ``AUC_weighted``), and writes ``outputs/model.pkl``, ``outputs/model.json``,
``outputs/featurization_summary.json``, ``outputs/mlflow-model/`` (the fitted pipeline as an MLflow
model, as every Azure AutoML trial has one: :func:`save_mlflow_model`) and, with
``enable_onnx_compatible_models``, ``outputs/model.onnx`` (opset 17, no ZipMap; input ``input``,
float32, for all-numeric features, else one input per column), the model refitted on all the training
data as Azure does after cross-validation. A config without ``featurization`` (a job recorded before it
existed) is mode off.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

TARGET_OPSET = 17

#: algorithm -> its settings, tried in this order (first settings of every algorithm, then second ...)
CLASSIFICATION_ALGORITHMS: dict[str, list[dict[str, Any]]] = {
    "LogisticRegression": [{"C": 1.0, "max_iter": 500}, {"C": 0.1, "max_iter": 500}, {"C": 10.0, "max_iter": 500}],
    "RandomForest": [{"n_estimators": 50, "random_state": 0}, {"n_estimators": 100, "max_depth": 5, "random_state": 0}],
    "GradientBoosting": [
        {"n_estimators": 50, "learning_rate": 0.1, "random_state": 0},
        {"n_estimators": 100, "learning_rate": 0.05, "max_depth": 2, "random_state": 0},
    ],
    "KNN": [{"n_neighbors": 5}, {"n_neighbors": 15, "weights": "distance"}],
    "ExtremeRandomTrees": [{"n_estimators": 50, "random_state": 0}],
    "DecisionTree": [{"max_depth": None, "random_state": 0}, {"max_depth": 4, "random_state": 0}],
    "SVM": [{"C": 1.0, "probability": True, "random_state": 0}],
    "SGD": [{"loss": "log_loss", "random_state": 0}],
    "BernoulliNaiveBayes": [{"alpha": 1.0}],
    "MultinomialNaiveBayes": [{"alpha": 1.0}],
}
REGRESSION_ALGORITHMS: dict[str, list[dict[str, Any]]] = {
    "ElasticNet": [{"alpha": 0.1, "l1_ratio": 0.5}, {"alpha": 0.01, "l1_ratio": 0.2}],
    "RandomForest": [{"n_estimators": 50, "random_state": 0}, {"n_estimators": 100, "max_depth": 6, "random_state": 0}],
    "GradientBoosting": [
        {"n_estimators": 100, "learning_rate": 0.1, "random_state": 0},
        {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 2, "random_state": 0},
    ],
    "KNN": [{"n_neighbors": 5}, {"n_neighbors": 10, "weights": "distance"}],
    "DecisionTree": [{"max_depth": None, "random_state": 0}, {"max_depth": 4, "random_state": 0}],
    "ExtremeRandomTrees": [{"n_estimators": 50, "random_state": 0}],
    "LassoLars": [{"alpha": 0.01}],
    "SGD": [{"random_state": 0}],
}
ALGORITHMS = {"classification": CLASSIFICATION_ALGORITHMS, "regression": REGRESSION_ALGORITHMS}
#: where the trials beyond the settings above come from: each algorithm's hyperparameters and the
#: values they are sampled from (:func:`emulator.automl.orchestrator.plan`)
_FORESTS = {
    "n_estimators": [10, 25, 50, 100, 200],
    "max_depth": [None, 3, 5, 8, 12],
    "min_samples_leaf": [1, 2, 4, 8],
    "max_features": ["sqrt", "log2", None],
    "random_state": [0],
}
_BOOSTING = {
    "n_estimators": [25, 50, 100, 200],
    "learning_rate": [0.01, 0.05, 0.1, 0.2, 0.5],
    "max_depth": [1, 2, 3, 5],
    "subsample": [0.6, 0.8, 1.0],
    "random_state": [0],
}
_NEIGHBOURS = {"n_neighbors": [1, 3, 5, 7, 10, 15, 25], "weights": ["uniform", "distance"], "p": [1, 2]}
_TREE = {"max_depth": [None, 2, 3, 4, 6, 8, 12], "min_samples_leaf": [1, 2, 4, 8, 16], "random_state": [0]}
SEARCH_SPACES: dict[str, dict[str, dict[str, list[Any]]]] = {
    "classification": {
        "LogisticRegression": {
            "C": [0.001, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0],
            "max_iter": [500],
            "class_weight": [None, "balanced"],
        },
        "RandomForest": _FORESTS,
        "GradientBoosting": _BOOSTING,
        "KNN": _NEIGHBOURS,
        "ExtremeRandomTrees": _FORESTS,
        "DecisionTree": {**_TREE, "criterion": ["gini", "entropy"]},
        "SVM": {
            "C": [0.1, 0.3, 1.0, 3.0, 10.0],
            "kernel": ["rbf", "linear", "poly"],
            "probability": [True],
            "random_state": [0],
        },
        "SGD": {"loss": ["log_loss", "modified_huber"], "alpha": [1e-5, 1e-4, 1e-3, 1e-2], "random_state": [0]},
        "BernoulliNaiveBayes": {"alpha": [0.01, 0.1, 0.5, 1.0, 2.0]},
        "MultinomialNaiveBayes": {"alpha": [0.01, 0.1, 0.5, 1.0, 2.0]},
    },
    "regression": {
        "ElasticNet": {"alpha": [0.001, 0.01, 0.1, 0.5, 1.0], "l1_ratio": [0.1, 0.2, 0.5, 0.8, 1.0]},
        "RandomForest": _FORESTS,
        "GradientBoosting": _BOOSTING,
        "KNN": _NEIGHBOURS,
        "DecisionTree": _TREE,
        "ExtremeRandomTrees": _FORESTS,
        "LassoLars": {"alpha": [0.0001, 0.001, 0.01, 0.1, 1.0]},
        "SGD": {"alpha": [1e-5, 1e-4, 1e-3, 1e-2], "penalty": ["l2", "l1", "elasticnet"], "random_state": [0]},
    },
}
#: Azure ML algorithms amlemu knows by name but does not run (their packages are not required)
UNAVAILABLE = {
    "classification": {"LightGBM", "XGBoostClassifier", "LinearSVM"},
    "regression": {"LightGBM", "XGBoostRegressor"},
}

#: Azure ML's primary metrics per task, with their goal
PRIMARY_METRICS = {
    "classification": {
        "accuracy": "maximize",
        "AUC_weighted": "maximize",
        "norm_macro_recall": "maximize",
        "precision_score_weighted": "maximize",
        "average_precision_score_weighted": "maximize",
    },
    "regression": {
        "spearman_correlation": "maximize",
        "normalized_root_mean_squared_error": "minimize",
        "r2_score": "maximize",
        "normalized_mean_absolute_error": "minimize",
    },
}


def _estimator(task: str, algorithm: str, settings: dict[str, Any]):
    # on first use: scikit-learn costs ~1.5 s at start
    from sklearn import ensemble, linear_model, naive_bayes, neighbors, svm, tree

    classes = {
        "classification": {
            "LogisticRegression": linear_model.LogisticRegression,
            "RandomForest": ensemble.RandomForestClassifier,
            "GradientBoosting": ensemble.GradientBoostingClassifier,
            "KNN": neighbors.KNeighborsClassifier,
            "ExtremeRandomTrees": ensemble.ExtraTreesClassifier,
            "DecisionTree": tree.DecisionTreeClassifier,
            "SVM": svm.SVC,
            "SGD": linear_model.SGDClassifier,
            "BernoulliNaiveBayes": naive_bayes.BernoulliNB,
            "MultinomialNaiveBayes": naive_bayes.MultinomialNB,
        },
        "regression": {
            "ElasticNet": linear_model.ElasticNet,
            "RandomForest": ensemble.RandomForestRegressor,
            "GradientBoosting": ensemble.GradientBoostingRegressor,
            "KNN": neighbors.KNeighborsRegressor,
            "DecisionTree": tree.DecisionTreeRegressor,
            "ExtremeRandomTrees": ensemble.ExtraTreesRegressor,
            "LassoLars": linear_model.LassoLars,
            "SGD": linear_model.SGDRegressor,
        },
    }
    return classes[task][algorithm](**settings)


# -- metrics ------------------------------------------------------------------------------------
def classification_metrics(y_true, y_pred, proba, classes) -> dict[str, float]:
    """Azure ML's classification metrics (the five primary ones and a few more)."""
    # on first use: scikit-learn costs ~1.5 s at start
    import numpy as np
    from sklearn import metrics
    from sklearn.preprocessing import label_binarize

    y_true = np.asarray(y_true)
    out = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "precision_score_weighted": metrics.precision_score(y_true, y_pred, average="weighted", zero_division=0),
        "recall_score_weighted": metrics.recall_score(y_true, y_pred, average="weighted", zero_division=0),
        "f1_score_weighted": metrics.f1_score(y_true, y_pred, average="weighted", zero_division=0),
        "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred),
    }
    n = len(classes)
    # Azure: macro recall rescaled so that random guessing scores 0 and a perfect model 1
    out["norm_macro_recall"] = (out["balanced_accuracy"] - 1 / n) / (1 - 1 / n) if n > 1 else 0.0
    present = [c for c in classes if c in set(y_true.tolist())]
    if proba is not None and len(present) > 1:
        onehot = label_binarize(y_true, classes=list(classes))
        if n == 2:
            onehot = np.hstack([1 - onehot, onehot])
        keep = [i for i, c in enumerate(classes) if c in present]
        weights = onehot[:, keep].sum(axis=0)
        aucs = [metrics.roc_auc_score(onehot[:, i], proba[:, i]) for i in keep]
        aps = [metrics.average_precision_score(onehot[:, i], proba[:, i]) for i in keep]
        out["AUC_weighted"] = float(np.average(aucs, weights=weights))
        out["average_precision_score_weighted"] = float(np.average(aps, weights=weights))
        out["log_loss"] = metrics.log_loss(y_true, proba, labels=list(classes))
    return {k: float(v) for k, v in out.items()}


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """Azure ML's regression metrics; the normalized ones are divided by the target's range."""
    # on first use: scikit-learn and scipy cost ~1.5 s at start
    import numpy as np
    from scipy.stats import spearmanr
    from sklearn import metrics

    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    span = float(y_true.max() - y_true.min()) or 1.0
    rmse = float(np.sqrt(metrics.mean_squared_error(y_true, y_pred)))
    mae = float(metrics.mean_absolute_error(y_true, y_pred))
    rho = spearmanr(y_true, y_pred).statistic
    return {
        "r2_score": float(metrics.r2_score(y_true, y_pred)),
        "root_mean_squared_error": rmse,
        "normalized_root_mean_squared_error": rmse / span,
        "mean_absolute_error": mae,
        "normalized_mean_absolute_error": mae / span,
        "spearman_correlation": float(rho) if rho == rho else 0.0,
    }


def score(task: str, model, X, y, classes=None) -> dict[str, float]:
    pred = model.predict(X)
    if task == "regression":
        return regression_metrics(y, pred)
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    return classification_metrics(y, pred, proba, list(model.classes_) if classes is None else classes)


# -- data ---------------------------------------------------------------------------------------
def table_files(path: str | Path) -> tuple[list[Path], str]:
    """The CSV files of a ``uri_file`` CSV or an MLTable folder, and their delimiter.

    Reads the MLTable file itself (``paths`` of ``file``/``folder``, ``read_delimited``), so the
    mltable package is not needed.
    """
    path = Path(path)
    if path.is_file():
        return [path], ","
    spec_file = path / "MLTable"
    if not spec_file.is_file():
        raise ValueError(f"{path} is a folder without an MLTable file; give an MLTable folder or a CSV file.")
    import yaml  # only an MLTable input needs PyYAML

    spec = yaml.safe_load(spec_file.read_text()) or {}
    delimiter = ","
    for step in spec.get("transformations") or []:
        if isinstance(step, dict) and "read_delimited" in step:
            delimiter = (step["read_delimited"] or {}).get("delimiter", ",")
        elif isinstance(step, dict) and set(step) & {"read_parquet", "read_json_lines"}:
            raise ValueError(f"{spec_file}: only read_delimited MLTables are read by amlemu; got {sorted(step)}.")
    files: list[Path] = []
    for entry in spec.get("paths") or []:
        if "file" in entry:
            files.append(path / entry["file"])
        elif "folder" in entry:
            files += sorted((path / entry["folder"]).glob("*.csv"))
        else:
            raise ValueError(f"{spec_file}: paths entries must be file: or folder: (got {entry}).")
    missing = [str(f) for f in files if not f.is_file()]
    if not files or missing:
        raise ValueError(f"{spec_file} lists no readable file ({', '.join(missing) or 'no paths'}).")
    return files, delimiter


def read_table(path: str | Path):
    import pandas as pd  # on first use: pandas costs ~0.4 s at start

    files, delimiter = table_files(path)
    return pd.concat([pd.read_csv(f, sep=delimiter) for f in files], ignore_index=True)


def split_xy(frame, target: str, weight: str | None = None):
    """The feature columns and the target; rows without a target value are left out, as Azure does."""
    if target not in frame.columns:
        raise ValueError(f"target_column_name '{target}' is not a column (columns: {', '.join(frame.columns)}).")
    frame = frame[frame[target].notna()]
    return frame.drop(columns=[c for c in (target, weight) if c]), frame[target]


# -- featurization ------------------------------------------------------------------------------
#: the column purposes ``column_name_and_types`` may set, as Azure spells them
FEATURE_TYPES = ("Numeric", "Categorical", "Text", "DateTime")
#: Azure's blockable transformers; amlemu uses OneHotEncoder, LabelEncoder (for categorical columns when
#: OneHotEncoder is blocked) and TfIdf, and accepts the others as no-ops
BLOCKABLE_TRANSFORMERS = (
    "TextTargetEncoder",
    "OneHotEncoder",
    "CatTargetEncoder",
    "TfIdf",
    "WoETargetEncoder",
    "LabelEncoder",
    "WordEmbedding",
    "NaiveBayes",
    "CountVectorizer",
    "HashOneHotEncoder",
)
IMPUTER_STRATEGIES = {"Numeric": ("mean", "median", "most_frequent"), "Categorical": ("most_frequent",)}
#: a string column with more distinct values than this is text (several words a value) or an ID (one word)
MAX_CATEGORIES = 100


def detect_type(series) -> tuple[str, str | None]:
    """Azure-style column purpose of one feature column: ``(type, why it is dropped or None)``.

    Numbers are Numeric; booleans and strings with at most :data:`MAX_CATEGORIES` distinct values
    (repeating ones) are Categorical; other strings are Text when their values hold several words,
    else an ID (every value unique, Azure's ``Hashes``) that is dropped.
    """
    values = series.dropna()
    if values.empty:
        return "Ignore", "AllNaN: every value is missing"
    if series.dtype.kind in "iuf":
        return "Numeric", None
    if series.dtype.kind == "b":
        return "Categorical", None
    distinct = values.nunique()
    if distinct < len(values) and distinct <= MAX_CATEGORIES:
        return "Categorical", None
    if values.astype(str).str.split().str.len().mean() >= 2:
        return "Text", None
    if distinct == len(values):
        return "Hashes", "every value is unique (an ID), so it carries no pattern to learn"
    return "Text", None


def plan_featurization(features, featurization: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Which treatment each feature column gets, from the training data and the job's featurization.

    Returns:
        One entry per column: ``name``, ``type`` (Numeric, Categorical, Text, Hashes, Ignore),
        ``dropped`` (why, or None), ``imputer`` (strategy) and ``encoder`` (OneHotEncoder,
        LabelEncoder, TfIdf or None).

    Raises:
        ValueError: with mode ``off``, a non-numeric column or missing values; a column forced to a
            type its values do not fit; a blocked or unusable transformer setting.
    """
    settings = featurization or {"mode": "off"}
    if settings.get("mode") == "off":
        bad = [c for c in features.columns if features[c].dtype.kind not in "biuf"]
        if bad:
            raise ValueError(
                f"Column(s) {', '.join(bad)} are not numeric; with featurization mode off amlemu's "
                "AutoML takes numeric columns only. Use featurization mode auto (the default) to "
                "encode them, or encode or drop them in the data."
            )
        missing = [c for c in features.columns if features[c].isna().any()]
        if missing:
            raise ValueError(
                f"Column(s) {', '.join(missing)} have missing values; with featurization mode off "
                "they are not imputed. Use featurization mode auto (the default), or fill them in "
                "the data."
            )
        return [
            {"name": c, "type": "Numeric", "dropped": None, "imputer": None, "encoder": None} for c in features.columns
        ]
    forced = settings.get("column_name_and_types") or {}
    blocked = set(settings.get("blocked_transformers") or [])
    strategies = {
        field: (entry.get("parameters") or {}).get("strategy", "mean")
        for entry in (settings.get("transformer_params") or {}).get("Imputer", [])
        for field in entry.get("fields") or []
    }
    plan = []
    for name in features.columns:
        kind, dropped = (forced[name], None) if name in forced else detect_type(features[name])
        if kind == "DateTime":
            raise ValueError(
                f"Column {name}: DateTime featurization is not emulated by amlemu; set it to "
                "Categorical or Text, or derive numeric parts (year, month, ...) in the data."
            )
        if kind == "Numeric" and features[name].dtype.kind not in "biuf":
            numbers = _to_numbers(features[name])
            wrong = features[name][numbers.isna() & features[name].notna()]
            if len(wrong):
                raise ValueError(
                    f"Column {name} is set to Numeric in column_name_and_types, but holds "
                    f"{wrong.iloc[0]!r}; set it to Categorical or Text, or fix the data."
                )
        imputer = strategies.get(name, "mean" if kind == "Numeric" else "most_frequent")
        if kind in IMPUTER_STRATEGIES and imputer not in IMPUTER_STRATEGIES[kind]:
            raise ValueError(
                f"transformer_params Imputer strategy {imputer!r} does not fit {kind} column "
                f"{name}; use {' or '.join(IMPUTER_STRATEGIES[kind])}."
            )
        encoder = None
        if kind == "Categorical":
            encoder = next((e for e in ("OneHotEncoder", "LabelEncoder") if e not in blocked), None)
            dropped = None if encoder else "OneHotEncoder and LabelEncoder are blocked"
        elif kind == "Text":
            encoder = None if "TfIdf" in blocked else "TfIdf"
            dropped = None if encoder else "TfIdf is blocked"
        plan.append(
            {
                "name": name,
                "type": kind,
                "dropped": dropped,
                "encoder": encoder,
                "imputer": imputer if kind in IMPUTER_STRATEGIES else None,
            }
        )
    if all(p["dropped"] for p in plan):
        raise ValueError(
            f"No feature is left after featurization ({'; '.join(_summary_lines(plan))}); "
            "give the data a usable column or change column_name_and_types / blocked_transformers."
        )
    return plan


def _to_numbers(series):
    import pandas as pd  # on first use: pandas costs ~0.4 s at start

    return pd.to_numeric(series.where(series.notna(), None), errors="coerce")


def _as_text(value) -> str:
    """A categorical or text value as the string the model (and its ONNX inputs) see; missing is ``""``."""
    if value is None or value != value:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a forced-Categorical number column read with NaNs: 3.0 is the category "3"
    return str(value)


def multi_input(plan: list[dict[str, Any]]) -> bool:
    """Whether the model takes one input per column (some column is not Numeric) or one float matrix."""
    return any(p["type"] != "Numeric" for p in plan if not p["dropped"])


def prepare(features, plan: list[dict[str, Any]]):
    """The columns the model takes, converted: a float32 matrix, or a DataFrame when :func:`multi_input`."""
    import pandas as pd  # on first use: pandas costs ~0.4 s at start

    kept = [p for p in plan if not p["dropped"]]
    columns = {}
    for p in kept:
        series = features[p["name"]] if p["name"] in features.columns else pd.Series([None] * len(features))
        columns[p["name"]] = (
            _to_numbers(series).astype("float32") if p["type"] == "Numeric" else series.map(_as_text).astype(object)
        )
    frame = pd.DataFrame(columns, index=features.index)
    return frame if multi_input(plan) else frame.to_numpy(dtype="float32")


def featurizer(plan: list[dict[str, Any]], algorithm: str):
    """The ColumnTransformer for ``plan``: numeric columns imputed and scaled, categorical ones imputed and
    one-hot encoded, text by TF-IDF. Columns are selected by name (DataFrame) or position (matrix)."""
    # on first use: scikit-learn costs ~1.5 s at start
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

    kept = [p for p in plan if not p["dropped"]]
    by_name = multi_input(plan)
    select = (lambda i, p: [p["name"]]) if by_name else (lambda i, p: [i])  # noqa: E731
    parts, numeric = [], {}
    for i, p in enumerate(kept):
        if p["type"] == "Numeric":
            numeric.setdefault(p["imputer"], []).extend(select(i, p))
        elif p["type"] == "Categorical":
            encoder = (
                OneHotEncoder(handle_unknown="ignore", sparse_output=False)
                if p["encoder"] == "OneHotEncoder"
                else OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
            )
            parts.append(
                (
                    f"categorical_{i}",
                    Pipeline(
                        [("imputer", SimpleImputer(missing_values="", strategy="most_frequent")), ("encoder", encoder)]
                    ),
                    select(i, p),
                )
            )
        else:  # Text: TfidfVectorizer takes a 1-D column, so the selector is a scalar
            parts.append((f"text_{i}", TfidfVectorizer(max_features=1000), p["name"] if by_name else i))
    for strategy, columns in numeric.items():
        # MultinomialNB needs x >= 0; without featurization (mode off) nothing is missing to impute
        scaler = MinMaxScaler() if algorithm == "MultinomialNaiveBayes" else StandardScaler()
        steps = [("imputer", SimpleImputer(missing_values=np.nan, strategy=strategy))] if strategy else []
        parts.insert(0, (f"numeric_{strategy or 'off'}", Pipeline([*steps, ("scaler", scaler)]), columns))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0)


def featurization_summary(plan: list[dict[str, Any]], model) -> list[dict[str, Any]]:
    """Azure's featurization summary shape: one entry per raw feature column."""
    transformer = model.named_steps["featurize"]
    counts: dict[str, int] = {}
    for name, step, columns in transformer.transformers_:
        if name == "remainder":
            continue
        width = len(step.get_feature_names_out())
        names = [columns] if isinstance(columns, (str, int)) else list(columns)
        for column in names:
            counts[str(column)] = width // len(names)
    kept = [p["name"] for p in plan if not p["dropped"]]
    out = []
    for p in plan:
        key = p["name"] if multi_input(plan) else (str(kept.index(p["name"])) if p["name"] in kept else None)
        out.append(
            {
                "RawFeatureName": p["name"],
                "TypeDetected": p["type"],
                "Dropped": "Yes" if p["dropped"] else "No",
                "EngineeredFeatureCount": 0 if p["dropped"] else counts.get(key, 0),
                "Transformations": _transformations(p),
            }
        )
    return out


def _transformations(p: dict[str, Any]) -> list[str]:
    if p["dropped"]:
        return []
    imputer = [f"SimpleImputer({p['imputer']})"] if p["imputer"] else []
    if p["type"] == "Numeric":
        return [*imputer, "Scaler"]
    return [*imputer, p["encoder"]]


def _summary_lines(plan: list[dict[str, Any]]) -> list[str]:
    return [
        f"{p['name']}: {p['type']}, "
        + (f"dropped ({p['dropped']})" if p["dropped"] else " + ".join(_transformations(p)))
        for p in plan
    ]


def _folds(task: str, n_rows: int, n_folds: int, y):
    from sklearn.model_selection import KFold, StratifiedKFold  # on first use: scikit-learn costs ~1.5 s at start

    if task == "classification":
        return StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=0).split(range(n_rows), y)
    return KFold(n_splits=n_folds, shuffle=True, random_state=0).split(range(n_rows))


def evaluate(
    config: dict[str, Any], frame, validation=None, plan: list[dict[str, Any]] | None = None
) -> tuple[dict[str, float], Any, list[str]]:
    """Score the trial's pipeline by its validation scheme; return the metrics, the final model and the
    feature columns it takes. ``plan`` is :func:`plan_featurization`'s (made here if not given)."""
    # on first use: scikit-learn costs ~1.5 s at start
    import numpy as np
    from sklearn.pipeline import Pipeline

    task, target = config["task"], config["target_column_name"]
    features, y = split_xy(frame, target, config.get("weight_column_name"))
    plan = plan or plan_featurization(features, config.get("featurization"))
    X = prepare(features, plan)
    rows = (lambda idx: X.iloc[idx]) if hasattr(X, "iloc") else (lambda idx: X[idx])  # noqa: E731

    def make():
        return Pipeline(
            [
                ("featurize", featurizer(plan, config["algorithm"])),
                ("model", _estimator(task, config["algorithm"], config["settings"])),
            ]
        )

    classes = sorted(set(y.tolist())) if task == "classification" else None
    scheme = config["validation"]
    if scheme["type"] == "auto":  # Azure's defaults by row count
        scheme = (
            {"type": "cv", "folds": 10}
            if len(X) < 1000
            else {"type": "cv", "folds": 3}
            if len(X) < 20000
            else {"type": "holdout", "size": 0.1}
        )
    if validation is not None:
        features_v, yv = split_xy(validation, target, config.get("weight_column_name"))
        metrics = score(task, make().fit(X, y.values), prepare(features_v, plan), yv.values, classes)
    elif scheme["type"] == "holdout":
        rng = np.random.default_rng(0)
        order = rng.permutation(len(X))
        cut = max(1, int(len(X) * scheme["size"]))
        test, train = order[:cut], order[cut:]
        metrics = score(task, make().fit(rows(train), y.values[train]), rows(test), y.values[test], classes)
    else:
        folds = [
            score(task, make().fit(rows(tr), y.values[tr]), rows(te), y.values[te], classes)
            for tr, te in _folds(task, len(X), scheme["folds"], y.values)
        ]
        metrics = {k: float(np.mean([f[k] for f in folds if k in f])) for k in folds[0]}
    return metrics, make().fit(X, y.values), [p["name"] for p in plan if not p["dropped"]]


def model_inputs(plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ONNX model's inputs: ``input`` (float32, one column a feature), or one per column kept."""
    kept = [p for p in plan if not p["dropped"]]
    if not multi_input(plan):
        return [{"name": "input", "shape": [None, len(kept)], "dtype": "float32"}]
    return [
        {"name": p["name"], "shape": [None, 1], "dtype": "float32" if p["type"] == "Numeric" else "string"}
        for p in kept
    ]


def export_onnx(model, task: str, inputs: int | list[dict[str, Any]]) -> bytes:
    """The model as ONNX; ``inputs`` is :func:`model_inputs` (or a feature count: one float input)."""
    # on first use: skl2onnx costs ~2 s at start
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    if isinstance(inputs, int):
        inputs = [{"name": "input", "shape": [None, inputs], "dtype": "float32"}]
    types = [
        (i["name"], (FloatTensorType if i["dtype"] == "float32" else StringTensorType)(i["shape"])) for i in inputs
    ]
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options: dict[int, dict[str, Any]] = {id(final): {"zipmap": False}} if task == "classification" else {}
    featurize = model.named_steps.get("featurize") if hasattr(model, "named_steps") else None
    for _, step, _ in getattr(featurize, "transformers_", []):
        if type(step).__name__ == "TfidfVectorizer":  # ONNX's StringNormalizer otherwise wants locale en_US.UTF-8
            options[id(step)] = {"locale": "C"}
    onx = to_onnx(model, initial_types=types, options=options or None, target_opset=TARGET_OPSET)
    return onx.SerializeToString()


def save_mlflow_model(model, plan: list[dict[str, Any]], features, path: Path) -> None:
    """Save the fitted pipeline as an MLflow model folder (``MLmodel``, ``model.pkl``, ``conda.yaml``,
    ``python_env.yaml``, ``requirements.txt``), loadable with ``mlflow.pyfunc.load_model``.

    Its signature names the columns the pipeline takes (:func:`prepare`'s, numbers as double), so a
    DataFrame of those columns is what it predicts on, as Azure's AutoML MLflow models take. The pip
    requirements are given rather than inferred: inferring loads the model in a subprocess (seconds).
    """
    # on first use: MLflow's sklearn flavor costs ~0.5 s at start
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature

    kept = [p["name"] for p in plan if not p["dropped"]]
    rows = prepare(features.head(5), plan)
    example = rows if hasattr(rows, "columns") else pd.DataFrame(rows, columns=kept)
    example = example.astype({c: "float64" for c in example.columns if example[c].dtype.kind == "f"})
    if path.exists():  # save_model refuses an existing folder (a trial run again in the same outputs)
        shutil.rmtree(path)
    mlflow.sklearn.save_model(
        model,
        str(path),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,  # model.pkl, as Azure's
        signature=infer_signature(example, model.predict(rows)),
        pip_requirements=[
            *mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True),
            _mlflow_requirement(),
        ],
    )


def _mlflow_requirement() -> str:
    """The MLflow distribution this trial runs, pinned: ``mlflow-skinny`` where only it is installed (as in
    amlemu's own environment), so that a no-code deployment of the model builds from what is installable
    here; left out, MLflow would pin the full ``mlflow`` package."""
    from importlib import metadata

    for distribution in ("mlflow", "mlflow-skinny"):
        try:
            return f"{distribution}=={metadata.version(distribution)}"
        except metadata.PackageNotFoundError:
            continue
    raise RuntimeError("MLflow is not installed in the trial's environment")


def main() -> None:
    parser = argparse.ArgumentParser(description="One amlemu AutoML trial.")
    parser.add_argument("--training_data", required=True)
    parser.add_argument("--validation_data")
    args = parser.parse_args()
    config = json.loads(os.environ["AMLEMU_AUTOML_TRIAL"])
    frame = read_table(args.training_data)
    validation = read_table(args.validation_data) if args.validation_data else None
    print(
        f"{config['algorithm']} {json.dumps(config['settings'])} on {len(frame)} rows "
        f"({config['validation']['type']} validation)",
        flush=True,
    )

    import mlflow  # on first use: MLflow costs ~1.2 s at start

    raw_features = split_xy(frame, config["target_column_name"], config.get("weight_column_name"))[0]
    plan = plan_featurization(raw_features, config.get("featurization"))
    metrics, model, features = evaluate(config, frame, validation, plan)
    summary = featurization_summary(plan, model)
    print(
        "featurization (mode "
        + (config.get("featurization") or {"mode": "off"})["mode"]
        + "):\n  "
        + "\n  ".join(_summary_lines(plan)),
        flush=True,
    )
    with mlflow.start_run():
        mlflow.log_params({"run_algorithm": config["algorithm"], **{k: str(v) for k, v in config["settings"].items()}})
        mlflow.set_tag("run_algorithm", config["algorithm"])
        mlflow.log_metrics(metrics)
    print(" ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())), flush=True)
    out = Path("outputs")
    out.mkdir(exist_ok=True)
    (out / "model.pkl").write_bytes(pickle.dumps(model))
    (out / "featurization_summary.json").write_text(json.dumps(summary, indent=2))
    inputs = model_inputs(plan)
    described = {
        "task": config["task"],
        "algorithm": config["algorithm"],
        "settings": config["settings"],
        "feature_names": features,
        "target_column_name": config["target_column_name"],
        "inputs": inputs,
    }
    if config["task"] == "classification":
        described["classes"] = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    if config.get("enable_onnx_compatible_models"):
        (out / "model.onnx").write_bytes(export_onnx(model, config["task"], inputs))
    save_mlflow_model(model, plan, raw_features, out / "mlflow-model")
    (out / "model.json").write_text(json.dumps(described, indent=2))
    print(f"wrote {', '.join(sorted(p.name + '/' * p.is_dir() for p in out.iterdir()))} to outputs/", flush=True)


if __name__ == "__main__":
    main()
