"""AutoML job specs: names as Azure spells them, algorithm selection, and bad input refused with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.automl.orchestrator import plan, stalled
from emulator.automl.spec import normalize_automl_job, primary_metric, select_algorithms
from emulator.errors import NotEmulated, ValidationError
from tests.conftest import SAMPLES

MLTABLE = SAMPLES / "iris" / "iris-mltable"


def job(**overrides):
    data = {
        "type": "automl",
        "task": "classification",
        "compute": "azureml:cpu-cluster",
        "target_column_name": "species",
        "primary_metric": "accuracy",
        "training_data": {"type": "mltable", "path": str(MLTABLE)},
        "limits": {"max_trials": 4, "max_concurrent_trials": 2},
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(
    "given, expected",
    [
        ("accuracy", "accuracy"),
        ("AUC_weighted", "AUC_weighted"),
        ("auc_weighted", "AUC_weighted"),
        ("AUCWeighted", "AUC_weighted"),
        ("NormMacroRecall", "norm_macro_recall"),
        ("average_precision_score_weighted", "average_precision_score_weighted"),
    ],
)
def test_classification_metric_spellings(given, expected):
    assert primary_metric("classification", given) == (expected, "maximize")


def test_regression_metrics_and_goals():
    assert primary_metric("regression", "r2_score") == ("r2_score", "maximize")
    assert primary_metric("regression", "NormalizedRootMeanSquaredError") == (
        "normalized_root_mean_squared_error",
        "minimize",
    )
    assert primary_metric("regression", None) == ("normalized_root_mean_squared_error", "minimize")
    assert primary_metric("classification", None) == ("accuracy", "maximize")


def test_unknown_primary_metric_names_the_known_ones():
    with pytest.raises(ValidationError, match="'r2_score' is not a classification metric; use one of accuracy"):
        normalize_automl_job(job(primary_metric="r2_score"), Path.cwd())


def test_algorithm_selection():
    assert select_algorithms("classification", ["random_forest", "LogisticRegression"], None) == [
        "LogisticRegression",
        "RandomForest",
    ]
    everything_but_knn = select_algorithms("classification", None, ["KNN"])
    assert "KNN" not in everything_but_knn and everything_but_knn[0] == "LogisticRegression"
    assert select_algorithms("regression", ["elastic_net", "GradientBoosting"], ["ElasticNet"]) == ["GradientBoosting"]


def test_blocking_every_allowed_algorithm_is_refused():
    with pytest.raises(ValidationError, match="No classification algorithm is left to try"):
        normalize_automl_job(
            job(training={"allowed_training_algorithms": ["KNN"], "blocked_training_algorithms": ["knn"]}), Path.cwd()
        )


def test_only_unavailable_algorithms_says_why():
    with pytest.raises(ValidationError, match="LightGBM is not run by amlemu"):
        select_algorithms("classification", ["LightGBM"], None)


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValidationError, match="'Prophet', not a regression algorithm"):
        select_algorithms("regression", ["Prophet"], None)


@pytest.mark.parametrize(
    "limits, message",
    [
        ({"max_trials": 0}, "limits.max_trials must be between 1 and 1000; got 0"),
        ({"max_trials": 2, "max_concurrent_trials": 3}, r"max_concurrent_trials \(3\) is more than limits.max_trials"),
        ({"timeout_minutes": 0}, "limits.timeout_minutes must be at least 1"),
        ({"max_trials": 2.5}, "limits.max_trials must be an integer"),
        ({"max_trial": 3}, "limits has unknown field"),
        ({"enable_early_termination": "yes"}, "limits.enable_early_termination must be true or false; got 'yes'"),
        ({"max_nodes": 0}, "limits.max_nodes must be at least 1"),
    ],
)
def test_bad_limits(limits, message):
    with pytest.raises(ValidationError, match=message):
        normalize_automl_job(job(limits=limits), Path.cwd())


def test_bad_data_and_fields():
    with pytest.raises(ValidationError, match="target_column_name 'label' is not a column of training_data"):
        normalize_automl_job(job(target_column_name="label"), Path.cwd())
    with pytest.raises(ValidationError, match="needs training_data"):
        normalize_automl_job(job(training_data=None), Path.cwd())
    with pytest.raises(ValidationError, match="needs a 'task'"):
        normalize_automl_job(job(task=None), Path.cwd())
    with pytest.raises(NotEmulated):
        normalize_automl_job(job(task="forecasting"), Path.cwd())
    with pytest.raises(ValidationError, match="n_cross_validations must be between 2"):
        normalize_automl_job(job(n_cross_validations=1), Path.cwd())
    with pytest.raises(ValidationError, match="not several"):
        normalize_automl_job(
            job(n_cross_validations=3, validation_data={"type": "mltable", "path": str(MLTABLE)}), Path.cwd()
        )
    with pytest.raises(ValidationError, match="Unknown field"):
        normalize_automl_job(job(search_space={}), Path.cwd())


def test_normalized_spec(tmp_path):
    csv = tmp_path / "iris.csv"
    csv.write_text((MLTABLE / "iris.csv").read_text())
    spec = normalize_automl_job(
        job(
            training_data={"type": "uri_file", "path": "iris.csv"},
            n_cross_validations=5,
            training={"enable_onnx_compatible_models": True, "blocked_training_algorithms": ["svm"]},
        ),
        tmp_path,
    )
    assert spec["type"] == "automl" and spec["task"] == "classification" and spec["goal"] == "maximize"
    assert spec["inputs"]["training_data"] == {"type": "uri_file", "path": str(csv), "mode": "ro_mount"}
    assert spec["validation"] == {"type": "cv", "folds": 5}
    assert spec["training"]["blocked_training_algorithms"] == ["SVM"]
    assert spec["training"]["enable_onnx_compatible_models"] is True
    assert spec["limits"]["max_trials"] == 4 and spec["limits"]["timeout_minutes"] == 8640


def test_plan_goes_breadth_first_and_honours_max_trials():
    trials = plan("classification", ["LogisticRegression", "KNN"], 4)
    assert [a for a, _ in trials] == ["LogisticRegression", "KNN", "LogisticRegression", "KNN"]
    assert trials[0][1] != trials[2][1]
    assert len(plan("regression", ["ElasticNet"], 10)) == 10  # the two set ones, then eight sampled


def test_plan_samples_new_settings_once_the_catalogue_is_used_up():
    trials = plan("regression", ["ElasticNet"], 1000)
    assert len(trials) == 25  # 5 alphas x 5 l1_ratios, each once
    assert len({json.dumps(s, sort_keys=True) for _, s in trials}) == 25
    assert plan("classification", ["KNN", "SVM"], 30) == plan("classification", ["KNN", "SVM"], 30)  # seeded
    assert [a for a, _ in plan("classification", ["KNN", "SVM"], 6)][:3] == ["KNN", "SVM", "KNN"]


@pytest.mark.parametrize(
    "scores, goal, expected",
    [
        ([0.9] + [0.9] * 20, "maximize", True),  # a tie is no improvement
        ([0.9] + [0.9] * 19, "maximize", False),  # only 19 since the best
        ([0.5] * 10 + [0.6] + [0.1] * 19, "maximize", False),
        ([0.5] + [None] * 20, "maximize", True),  # trials without the metric improve nothing
        ([0.5] + [0.4] * 20, "minimize", False),
        ([0.5] + [0.6] * 20, "minimize", True),
    ],
)
def test_stalled_is_no_improvement_over_the_window(scores, goal, expected):
    assert stalled(scores, goal, 20) is expected
