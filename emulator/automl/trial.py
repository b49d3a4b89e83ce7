"""One AutoML trial: fit one scikit-learn algorithm with one setting, score it, save the model.

Self-contained on purpose: the AutoML orchestrator copies this file into each trial's code
snapshot and runs it as a child command job (``python automl_trial.py``) in the trial's
environment, where ``emulator`` may not be importable (the docker runtime). The orchestrator and
the spec validation import the same catalogue and metric tables from here, so both sides agree.

The trial reads its settings from ``AMLEMU_AUTOML_TRIAL`` (JSON: task, algorithm, settings,
target column, primary metric, validation scheme, onnx flag) and its data paths from the
command line; it logs every metric of its task with MLflow (Azure's names, e.g. ``accuracy``,
``AUC_weighted``), and writes ``outputs/model.pkl``, ``outputs/model.json`` and, with
``enable_onnx_compatible_models``, ``outputs/model.onnx`` (input ``input``, float32, opset 17,
no ZipMap), the model refitted on all the training data as Azure does after cross-validation.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

TARGET_OPSET = 17

#: algorithm -> its settings, tried in this order (first settings of every algorithm, then second ...)
CLASSIFICATION_ALGORITHMS: dict[str, list[dict[str, Any]]] = {
    "LogisticRegression": [{"C": 1.0, "max_iter": 500}, {"C": 0.1, "max_iter": 500}, {"C": 10.0, "max_iter": 500}],
    "RandomForest": [{"n_estimators": 50, "random_state": 0}, {"n_estimators": 100, "max_depth": 5, "random_state": 0}],
    "GradientBoosting": [{"n_estimators": 50, "learning_rate": 0.1, "random_state": 0},
                         {"n_estimators": 100, "learning_rate": 0.05, "max_depth": 2, "random_state": 0}],
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
    "GradientBoosting": [{"n_estimators": 100, "learning_rate": 0.1, "random_state": 0},
                         {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 2, "random_state": 0}],
    "KNN": [{"n_neighbors": 5}, {"n_neighbors": 10, "weights": "distance"}],
    "DecisionTree": [{"max_depth": None, "random_state": 0}, {"max_depth": 4, "random_state": 0}],
    "ExtremeRandomTrees": [{"n_estimators": 50, "random_state": 0}],
    "LassoLars": [{"alpha": 0.01}],
    "SGD": [{"random_state": 0}],
}
ALGORITHMS = {"classification": CLASSIFICATION_ALGORITHMS, "regression": REGRESSION_ALGORITHMS}
#: where the trials beyond the settings above come from: each algorithm's hyperparameters and the
#: values they are sampled from (:func:`emulator.automl.orchestrator.plan`)
_FORESTS = {"n_estimators": [10, 25, 50, 100, 200], "max_depth": [None, 3, 5, 8, 12],
            "min_samples_leaf": [1, 2, 4, 8], "max_features": ["sqrt", "log2", None], "random_state": [0]}
_BOOSTING = {"n_estimators": [25, 50, 100, 200], "learning_rate": [0.01, 0.05, 0.1, 0.2, 0.5],
             "max_depth": [1, 2, 3, 5], "subsample": [0.6, 0.8, 1.0], "random_state": [0]}
_NEIGHBOURS = {"n_neighbors": [1, 3, 5, 7, 10, 15, 25], "weights": ["uniform", "distance"], "p": [1, 2]}
_TREE = {"max_depth": [None, 2, 3, 4, 6, 8, 12], "min_samples_leaf": [1, 2, 4, 8, 16], "random_state": [0]}
SEARCH_SPACES: dict[str, dict[str, dict[str, list[Any]]]] = {
    "classification": {
        "LogisticRegression": {"C": [0.001, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0], "max_iter": [500],
                               "class_weight": [None, "balanced"]},
        "RandomForest": _FORESTS, "GradientBoosting": _BOOSTING, "KNN": _NEIGHBOURS, "ExtremeRandomTrees": _FORESTS,
        "DecisionTree": {**_TREE, "criterion": ["gini", "entropy"]},
        "SVM": {"C": [0.1, 0.3, 1.0, 3.0, 10.0], "kernel": ["rbf", "linear", "poly"], "probability": [True],
                "random_state": [0]},
        "SGD": {"loss": ["log_loss", "modified_huber"], "alpha": [1e-5, 1e-4, 1e-3, 1e-2], "random_state": [0]},
        "BernoulliNaiveBayes": {"alpha": [0.01, 0.1, 0.5, 1.0, 2.0]},
        "MultinomialNaiveBayes": {"alpha": [0.01, 0.1, 0.5, 1.0, 2.0]},
    },
    "regression": {
        "ElasticNet": {"alpha": [0.001, 0.01, 0.1, 0.5, 1.0], "l1_ratio": [0.1, 0.2, 0.5, 0.8, 1.0]},
        "RandomForest": _FORESTS, "GradientBoosting": _BOOSTING, "KNN": _NEIGHBOURS,
        "DecisionTree": _TREE, "ExtremeRandomTrees": _FORESTS,
        "LassoLars": {"alpha": [0.0001, 0.001, 0.01, 0.1, 1.0]},
        "SGD": {"alpha": [1e-5, 1e-4, 1e-3, 1e-2], "penalty": ["l2", "l1", "elasticnet"], "random_state": [0]},
    },
}
#: Azure ML algorithms amlemu knows by name but does not run (their packages are not required)
UNAVAILABLE = {"classification": {"LightGBM", "XGBoostClassifier", "LinearSVM"},
               "regression": {"LightGBM", "XGBoostRegressor"}}

#: Azure ML's primary metrics per task, with their goal
PRIMARY_METRICS = {
    "classification": {"accuracy": "maximize", "AUC_weighted": "maximize", "norm_macro_recall": "maximize",
                       "precision_score_weighted": "maximize", "average_precision_score_weighted": "maximize"},
    "regression": {"spearman_correlation": "maximize", "normalized_root_mean_squared_error": "minimize",
                   "r2_score": "maximize", "normalized_mean_absolute_error": "minimize"},
}


def _estimator(task: str, algorithm: str, settings: dict[str, Any]):
    from sklearn import ensemble, linear_model, naive_bayes, neighbors, svm, tree
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    classes = {
        "classification": {
            "LogisticRegression": linear_model.LogisticRegression, "RandomForest": ensemble.RandomForestClassifier,
            "GradientBoosting": ensemble.GradientBoostingClassifier, "KNN": neighbors.KNeighborsClassifier,
            "ExtremeRandomTrees": ensemble.ExtraTreesClassifier, "DecisionTree": tree.DecisionTreeClassifier,
            "SVM": svm.SVC, "SGD": linear_model.SGDClassifier, "BernoulliNaiveBayes": naive_bayes.BernoulliNB,
            "MultinomialNaiveBayes": naive_bayes.MultinomialNB},
        "regression": {
            "ElasticNet": linear_model.ElasticNet, "RandomForest": ensemble.RandomForestRegressor,
            "GradientBoosting": ensemble.GradientBoostingRegressor, "KNN": neighbors.KNeighborsRegressor,
            "DecisionTree": tree.DecisionTreeRegressor, "ExtremeRandomTrees": ensemble.ExtraTreesRegressor,
            "LassoLars": linear_model.LassoLars, "SGD": linear_model.SGDRegressor},
    }
    scaler = MinMaxScaler() if algorithm == "MultinomialNaiveBayes" else StandardScaler()  # MultinomialNB needs x >= 0
    return Pipeline([("scaler", scaler), ("model", classes[task][algorithm](**settings))])


# -- metrics ------------------------------------------------------------------------------------
def classification_metrics(y_true, y_pred, proba, classes) -> dict[str, float]:
    """Azure ML's classification metrics (the five primary ones and a few more)."""
    import numpy as np
    from sklearn import metrics
    from sklearn.preprocessing import label_binarize

    y_true = np.asarray(y_true)
    out = {"accuracy": metrics.accuracy_score(y_true, y_pred),
           "precision_score_weighted": metrics.precision_score(y_true, y_pred, average="weighted", zero_division=0),
           "recall_score_weighted": metrics.recall_score(y_true, y_pred, average="weighted", zero_division=0),
           "f1_score_weighted": metrics.f1_score(y_true, y_pred, average="weighted", zero_division=0),
           "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred)}
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
    import numpy as np
    from scipy.stats import spearmanr
    from sklearn import metrics

    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    span = float(y_true.max() - y_true.min()) or 1.0
    rmse = float(np.sqrt(metrics.mean_squared_error(y_true, y_pred)))
    mae = float(metrics.mean_absolute_error(y_true, y_pred))
    rho = spearmanr(y_true, y_pred).statistic
    return {"r2_score": float(metrics.r2_score(y_true, y_pred)), "root_mean_squared_error": rmse,
            "normalized_root_mean_squared_error": rmse / span, "mean_absolute_error": mae,
            "normalized_mean_absolute_error": mae / span,
            "spearman_correlation": float(rho) if rho == rho else 0.0}


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
    import yaml

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
    import pandas as pd

    files, delimiter = table_files(path)
    return pd.concat([pd.read_csv(f, sep=delimiter) for f in files], ignore_index=True)


def split_xy(frame, target: str, weight: str | None = None):
    if target not in frame.columns:
        raise ValueError(f"target_column_name '{target}' is not a column (columns: {', '.join(frame.columns)}).")
    features = frame.drop(columns=[c for c in (target, weight) if c])
    text = [c for c in features.columns if features[c].dtype.kind not in "biuf"]
    if text:
        raise ValueError(f"Column(s) {', '.join(text)} are not numeric; amlemu's AutoML featurizes numeric columns "
                         "only. Encode them in the data, or drop them.")
    return features.astype("float32"), frame[target], list(features.columns)


def _folds(task: str, n_rows: int, n_folds: int, y):
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "classification":
        return StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=0).split(range(n_rows), y)
    return KFold(n_splits=n_folds, shuffle=True, random_state=0).split(range(n_rows))


def evaluate(config: dict[str, Any], frame, validation=None) -> tuple[dict[str, float], Any, list[str]]:
    """Score the trial's estimator by its validation scheme; return the metrics and the final model."""
    import numpy as np

    task, target = config["task"], config["target_column_name"]
    X, y, features = split_xy(frame, target, config.get("weight_column_name"))
    make = lambda: _estimator(task, config["algorithm"], config["settings"])  # noqa: E731
    classes = sorted(set(y.tolist())) if task == "classification" else None
    scheme = config["validation"]
    if scheme["type"] == "auto":  # Azure's defaults by row count
        scheme = ({"type": "cv", "folds": 10} if len(X) < 1000 else {"type": "cv", "folds": 3} if len(X) < 20000
                  else {"type": "holdout", "size": 0.1})
    if validation is not None:
        Xv, yv, _ = split_xy(validation, target, config.get("weight_column_name"))
        metrics = score(task, make().fit(X.values, y.values), Xv[features].values, yv.values, classes)
    elif scheme["type"] == "holdout":
        rng = np.random.default_rng(0)
        order = rng.permutation(len(X))
        cut = max(1, int(len(X) * scheme["size"]))
        test, train = order[:cut], order[cut:]
        metrics = score(task, make().fit(X.values[train], y.values[train]), X.values[test], y.values[test], classes)
    else:
        folds = [score(task, make().fit(X.values[tr], y.values[tr]), X.values[te], y.values[te], classes)
                 for tr, te in _folds(task, len(X), scheme["folds"], y.values)]
        metrics = {k: float(np.mean([f[k] for f in folds if k in f])) for k in folds[0]}
    return metrics, make().fit(X.values, y.values), features


def export_onnx(model, task: str, n_features: int) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(model): {"zipmap": False}} if task == "classification" else None
    onx = to_onnx(model, initial_types=[("input", FloatTensorType([None, n_features]))], options=options,
                  target_opset=TARGET_OPSET)
    return onx.SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser(description="One amlemu AutoML trial.")
    parser.add_argument("--training_data", required=True)
    parser.add_argument("--validation_data")
    args = parser.parse_args()
    config = json.loads(os.environ["AMLEMU_AUTOML_TRIAL"])
    frame = read_table(args.training_data)
    validation = read_table(args.validation_data) if args.validation_data else None
    print(f"{config['algorithm']} {json.dumps(config['settings'])} on {len(frame)} rows "
          f"({config['validation']['type']} validation)", flush=True)

    import mlflow
    import pickle

    metrics, model, features = evaluate(config, frame, validation)
    with mlflow.start_run():
        mlflow.log_params({"run_algorithm": config["algorithm"], **{k: str(v) for k, v in config["settings"].items()}})
        mlflow.set_tag("run_algorithm", config["algorithm"])
        mlflow.log_metrics(metrics)
    print(" ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())), flush=True)
    out = Path("outputs")
    out.mkdir(exist_ok=True)
    (out / "model.pkl").write_bytes(pickle.dumps(model))
    described = {"task": config["task"], "algorithm": config["algorithm"], "settings": config["settings"],
                 "feature_names": features, "target_column_name": config["target_column_name"],
                 "inputs": [{"name": "input", "shape": [None, len(features)], "dtype": "float32"}]}
    if config["task"] == "classification":
        described["classes"] = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    if config.get("enable_onnx_compatible_models"):
        (out / "model.onnx").write_bytes(export_onnx(model, config["task"], len(features)))
    (out / "model.json").write_text(json.dumps(described, indent=2))
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to outputs/", flush=True)


if __name__ == "__main__":
    main()
