"""The AutoML trial's pieces: Azure's metrics, MLTable reading, validation schemes, ONNX export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emulator.automl import trial
from tests.conftest import SAMPLES

MLTABLE = SAMPLES / "iris" / "iris-mltable"


def test_classification_metrics_by_hand():
    y = [0, 0, 1, 1]
    pred = [0, 1, 1, 1]
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    m = trial.classification_metrics(y, pred, proba, [0, 1])
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["AUC_weighted"] == pytest.approx(1.0)  # the scores rank every positive above every negative
    assert m["average_precision_score_weighted"] == pytest.approx(1.0)
    # recall 0.5 and 1.0: balanced 0.75, rescaled so chance (0.5) is 0 -> 0.5
    assert m["norm_macro_recall"] == pytest.approx(0.5)
    assert m["precision_score_weighted"] == pytest.approx(0.5 * 1.0 + 0.5 * (2 / 3))


def test_regression_metrics_by_hand():
    m = trial.regression_metrics([0.0, 1.0, 2.0, 4.0], [0.0, 1.0, 2.0, 2.0])
    assert m["root_mean_squared_error"] == pytest.approx(1.0)
    assert m["normalized_root_mean_squared_error"] == pytest.approx(0.25)
    assert m["normalized_mean_absolute_error"] == pytest.approx(0.5 / 4)
    assert m["spearman_correlation"] == pytest.approx(np.corrcoef([1, 2, 3, 4], [1, 2, 3.5, 3.5])[0, 1])
    assert m["r2_score"] == pytest.approx(1 - 4 / 8.75)


def test_mltable_is_read_without_the_mltable_package(tmp_path):
    frame = trial.read_table(MLTABLE)
    assert frame.shape == (150, 5) and "species" in frame.columns
    folder = tmp_path / "semi"
    folder.mkdir()
    (folder / "a.csv").write_text("x;y\n1;2\n")
    (folder / "MLTable").write_text(
        "paths:\n  - file: ./a.csv\ntransformations:\n  - read_delimited:\n      delimiter: ';'\n"
    )
    assert trial.read_table(folder).to_dict("records") == [{"x": 1, "y": 2}]
    with pytest.raises(ValueError, match="without an MLTable file"):
        trial.table_files(tmp_path)


def config(**overrides):
    base = {
        "task": "classification",
        "target_column_name": "species",
        "algorithm": "LogisticRegression",
        "settings": {"C": 1.0, "max_iter": 500},
        "validation": {"type": "cv", "folds": 3},
    }
    return {**base, **overrides}


@pytest.mark.parametrize("validation", [{"type": "cv", "folds": 3}, {"type": "holdout", "size": 0.2}, {"type": "auto"}])
def test_evaluate_schemes(validation):
    metrics, model, features = trial.evaluate(config(validation=validation), trial.read_table(MLTABLE))
    assert metrics["accuracy"] > 0.85 and 0.9 < metrics["AUC_weighted"] <= 1.0
    assert features == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert list(model.classes_) == [0, 1, 2]


def test_evaluate_on_validation_data_and_every_algorithm_fits():
    frame = trial.read_table(MLTABLE)
    for algorithm, settings in trial.CLASSIFICATION_ALGORITHMS.items():
        metrics, _, _ = trial.evaluate(
            config(algorithm=algorithm, settings=settings[0], validation={"type": "validation_data"}), frame, frame
        )
        assert set(trial.PRIMARY_METRICS["classification"]) <= set(metrics), algorithm
    for algorithm, settings in trial.REGRESSION_ALGORITHMS.items():
        metrics, _, _ = trial.evaluate(
            config(task="regression", target_column_name="petal_width", algorithm=algorithm, settings=settings[0]),
            frame,
        )
        assert set(trial.PRIMARY_METRICS["regression"]) <= set(metrics), algorithm


def test_text_features_are_refused():
    frame = trial.read_table(MLTABLE).assign(colour="red")
    with pytest.raises(ValueError, match="colour are not numeric"):
        trial.evaluate(config(), frame)


def test_onnx_export_answers_like_the_model():
    import onnxruntime as ort

    frame = trial.read_table(MLTABLE)
    _, model, features = trial.evaluate(config(algorithm="RandomForest", settings={"n_estimators": 10}), frame)
    session = ort.InferenceSession(
        trial.export_onnx(model, "classification", len(features)), providers=["CPUExecutionProvider"]
    )
    X = frame[features].values.astype(np.float32)[:10]
    assert session.get_inputs()[0].name == "input"
    label, probabilities = session.run(None, {"input": X})
    assert label.tolist() == model.predict(X).tolist() and probabilities.shape == (10, 3)
    assert json.dumps(label.tolist())
