"""AutoML featurization: which treatment each column gets, the fitted pipeline and its ONNX export,
the ``featurization`` spec section, and the SDK entity round trip. Real scikit-learn and ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emulator.automl import trial
from emulator.automl.spec import normalize_automl_job
from emulator.errors import NotEmulated, ValidationError

AUTO = {"mode": "auto"}


def pets(n: int = 60) -> pd.DataFrame:
    """``colour`` carries the signal; ``weight`` has gaps, ``id`` is unique, ``note`` is free text."""
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], n)
    weight = rng.normal(10, 2, n)
    weight[::7] = np.nan
    return pd.DataFrame(
        {
            "id": [f"pet-{i}" for i in range(n)],
            "colour": colour,
            "weight": weight,
            "note": [f"seen at {w} on day {i}" for i, w in enumerate(rng.choice(["home", "park"], n))],
            "kind": np.where(colour == "red", "cat", "dog"),
        }
    )


def config(featurization=AUTO, **overrides):
    base = {
        "task": "classification",
        "target_column_name": "kind",
        "algorithm": "LogisticRegression",
        "settings": {"C": 1.0, "max_iter": 500},
        "validation": {"type": "cv", "folds": 3},
        "featurization": featurization,
    }
    return {**base, **overrides}


def plan_of(frame, featurization=AUTO):
    return {p["name"]: p for p in trial.plan_featurization(trial.split_xy(frame, "kind")[0], featurization)}


def test_columns_are_typed_from_the_training_data():
    plan = plan_of(pets().assign(indoor=lambda f: f.weight > 10))
    assert {n: (p["type"], bool(p["dropped"])) for n, p in plan.items()} == {
        "id": ("Hashes", True),
        "colour": ("Categorical", False),
        "weight": ("Numeric", False),
        "note": ("Text", False),
        "indoor": ("Categorical", False),
    }
    assert plan["weight"]["imputer"] == "mean" and plan["colour"]["imputer"] == "most_frequent"
    assert plan["colour"]["encoder"] == "OneHotEncoder" and plan["note"]["encoder"] == "TfIdf"
    assert plan_of(pets().assign(empty=np.nan))["empty"]["dropped"].startswith("AllNaN")


def test_the_featurized_pipeline_learns_from_a_categorical_column_with_missing_numbers():
    frame = pets()
    plan = trial.plan_featurization(trial.split_xy(frame, "kind")[0], AUTO)
    for algorithm in ("LogisticRegression", "MultinomialNaiveBayes", "RandomForest"):
        metrics, model, features = trial.evaluate(
            config(algorithm=algorithm, settings=trial.CLASSIFICATION_ALGORITHMS[algorithm][0]), frame, None, plan
        )
        assert metrics["accuracy"] > 0.9, algorithm
    assert features == ["colour", "weight", "note"]
    summary = {s["RawFeatureName"]: s for s in trial.featurization_summary(plan, model)}
    assert summary["id"] == {
        "RawFeatureName": "id",
        "TypeDetected": "Hashes",
        "Dropped": "Yes",
        "EngineeredFeatureCount": 0,
        "Transformations": [],
    }
    assert summary["colour"]["EngineeredFeatureCount"] == 3
    assert summary["colour"]["Transformations"] == ["SimpleImputer(most_frequent)", "OneHotEncoder"]
    assert summary["weight"]["EngineeredFeatureCount"] == 1
    assert summary["note"]["TypeDetected"] == "Text" and summary["note"]["EngineeredFeatureCount"] > 3
    # unseen categories and missing values at prediction time
    unseen = pd.DataFrame({"colour": ["purple", "red"], "weight": [np.nan, 9.0], "note": ["", "seen at home"]})
    assert len(model.predict(trial.prepare(unseen, plan))) == 2


def test_mode_off_refuses_text_and_missing_values_naming_the_columns():
    with pytest.raises(ValueError, match="Column.s. id, colour, note are not numeric; with featurization mode off"):
        trial.evaluate(config({"mode": "off"}), pets())
    numeric = pets().drop(columns=["id", "colour", "note"]).assign(kind=lambda f: f.weight.fillna(0) > 10)
    with pytest.raises(ValueError, match="Column.s. weight have missing values.*featurization mode auto"):
        trial.evaluate(config({"mode": "off"}), numeric)
    # a config without featurization (recorded before featurization existed) behaves as mode off
    with pytest.raises(ValueError, match="id, colour, note are not numeric"):
        trial.evaluate(config(None), pets())


def test_column_name_and_types_and_blocked_transformers_override_detection():
    frame = pets().assign(ward=lambda f: np.arange(len(f)) % 4, code=lambda f: (np.arange(len(f)) % 3).astype(str))
    plan = plan_of(
        frame,
        {
            "mode": "custom",
            "column_name_and_types": {"ward": "Categorical", "code": "Numeric", "id": "Text"},
            "blocked_transformers": ["OneHotEncoder"],
        },
    )
    assert (plan["ward"]["type"], plan["ward"]["encoder"]) == ("Categorical", "LabelEncoder")
    assert plan["code"]["type"] == "Numeric" and plan["id"]["type"] == "Text"
    assert trial.prepare(frame.head(2), list(plan.values()))["ward"].tolist() == ["0", "1"]
    assert plan_of(frame, {"mode": "auto", "blocked_transformers": ["TfIdf"]})["note"]["dropped"] == "TfIdf is blocked"
    with pytest.raises(ValueError, match="colour is set to Numeric in column_name_and_types, but holds"):
        plan_of(frame, {"mode": "custom", "column_name_and_types": {"colour": "Numeric"}})
    strategies = {
        "mode": "custom",
        "transformer_params": {"Imputer": [{"fields": ["weight"], "parameters": {"strategy": "median"}}]},
    }
    assert plan_of(frame, strategies)["weight"]["imputer"] == "median"


def test_onnx_export_takes_one_input_per_column_and_answers_like_the_model():
    import onnxruntime as ort

    frame = pets()
    metrics, model, features = trial.evaluate(
        config(algorithm="RandomForest", settings={"n_estimators": 20, "random_state": 0}), frame
    )
    plan = trial.plan_featurization(trial.split_xy(frame, "kind")[0], AUTO)
    inputs = trial.model_inputs(plan)
    assert inputs == [
        {"name": "colour", "shape": [None, 1], "dtype": "string"},
        {"name": "weight", "shape": [None, 1], "dtype": "float32"},
        {"name": "note", "shape": [None, 1], "dtype": "string"},
    ]
    session = ort.InferenceSession(
        trial.export_onnx(model, "classification", inputs), providers=["CPUExecutionProvider"]
    )
    X = trial.prepare(trial.split_xy(frame, "kind")[0], plan)
    feeds = {
        "colour": X[["colour"]].to_numpy(object),
        "weight": X[["weight"]].to_numpy(np.float32),
        "note": X[["note"]].to_numpy(object),
    }
    label, probabilities = session.run(None, feeds)
    assert label.tolist() == model.predict(X).tolist() and probabilities.shape == (len(frame), 2)


def test_numeric_data_keeps_the_single_float_input():
    frame = pets().drop(columns=["id", "note"]).assign(colour=lambda f: (f.colour == "red").astype(int))
    plan = trial.plan_featurization(trial.split_xy(frame, "kind")[0], AUTO)
    assert trial.model_inputs(plan) == [{"name": "input", "shape": [None, 2], "dtype": "float32"}]
    _, model, _ = trial.evaluate(config(), frame)
    assert model.predict(np.array([[1, np.nan], [0, 10]], np.float32)).tolist() == ["cat", "dog"]


def test_the_scorer_serves_a_multi_input_model_from_mlflow_split_orientation(tmp_path):
    from emulator.serving.model_inputs import feeds_from_body
    from emulator.serving.onnx_scorer import OnnxScorer

    frame = pets()
    _, model, _ = trial.evaluate(config(), frame)
    plan = trial.plan_featurization(trial.split_xy(frame, "kind")[0], AUTO)
    (tmp_path / "model.onnx").write_bytes(trial.export_onnx(model, "classification", trial.model_inputs(plan)))
    scorer = OnnxScorer(str(tmp_path / "model.onnx"), max_rows=100)
    assert [i.name for i in scorer.inputs] == ["colour", "weight", "note"]
    body = {
        "input_data": {
            "columns": ["note", "colour", "weight"],
            "data": [["seen at park", "red", 9.5], ["seen at home", "blue", 11.0]],
        }
    }
    assert scorer.predict(feeds_from_body(body, scorer.inputs, 100)) == ["cat", "dog"]


# -- the spec's featurization section ---------------------------------------------------------------
def job(tmp_path: Path, featurization=None):
    pets().to_csv(tmp_path / "pets.csv", index=False)
    data = {
        "type": "automl",
        "task": "classification",
        "compute": "cpu-cluster",
        "target_column_name": "kind",
        "training_data": {"type": "uri_file", "path": "pets.csv"},
    }
    if featurization is not None:
        data["featurization"] = featurization
    return normalize_automl_job(data, tmp_path)


def test_spec_featurization_defaults_and_spellings(tmp_path):
    assert job(tmp_path)["featurization"] == {
        "mode": "auto",
        "blocked_transformers": [],
        "column_name_and_types": {},
        "transformer_params": {},
    }
    spec = job(
        tmp_path,
        {
            "mode": "Custom",
            "blocked_transformers": ["one_hot_encoder", "TfIdf"],
            "column_name_and_types": {"weight": "categorical"},
            "transformer_params": {"imputer": [{"fields": ["weight"], "parameters": {"strategy": "most_frequent"}}]},
        },
    )
    assert spec["featurization"] == {
        "mode": "custom",
        "blocked_transformers": ["OneHotEncoder", "TfIdf"],
        "column_name_and_types": {"weight": "Categorical"},
        "transformer_params": {"Imputer": [{"fields": ["weight"], "parameters": {"strategy": "most_frequent"}}]},
    }
    assert json.dumps(spec["featurization"])


@pytest.mark.parametrize(
    "featurization, message",
    [
        ({"mode": "sometimes"}, "featurization.mode must be auto, off, custom; got 'sometimes'"),
        ({"modes": "auto"}, "featurization has unknown field.s. modes; use"),
        ({"blocked_transformers": ["Magic"]}, "blocked_transformers has 'Magic'; use one of TextTargetEncoder"),
        ({"column_name_and_types": {"colour": "Colourful"}}, "column_name_and_types.colour has 'Colourful'"),
        (
            {"column_name_and_types": {"shade": "Categorical"}},
            "names 'shade', which is not a column of training_data; use one of id, colour, weight, note",
        ),
        ({"column_name_and_types": {"kind": "Categorical"}}, "names 'kind', which is the target column"),
        (
            {"transformer_params": {"imputer": [{"fields": ["weight"], "parameters": {"strategy": "zero"}}]}},
            "Imputer parameters .* are not used by amlemu; give \\{strategy: mean | median | most_frequent\\}",
        ),
        ({"mode": "off", "column_name_and_types": {"colour": "Categorical"}}, "mode off does not featurize"),
    ],
)
def test_spec_featurization_errors_name_the_problem(tmp_path, featurization, message):
    with pytest.raises(ValidationError, match=message):
        job(tmp_path, featurization)


def test_datetime_columns_are_not_emulated(tmp_path):
    with pytest.raises(NotEmulated, match="DateTime"):
        job(tmp_path, {"column_name_and_types": {"note": "DateTime"}})


def test_sdk_featurization_round_trips_through_the_spec(tmp_path):
    from azure.ai.ml import Input, automl
    from azure.ai.ml.automl import ColumnTransformer

    from backends.automl_entities import to_spec as automl_to_spec

    pets().to_csv(tmp_path / "pets.csv", index=False)
    entity = automl.classification(
        training_data=Input(type="uri_file", path=str(tmp_path / "pets.csv")),
        target_column_name="kind",
        compute="cpu-cluster",
    )
    entity.set_featurization(
        mode="custom",
        blocked_transformers=["TfIdf"],
        column_name_and_types={"id": "Text"},
        transformer_params={"imputer": [ColumnTransformer(fields=["weight"], parameters={"strategy": "median"})]},
    )
    spec = normalize_automl_job(automl_to_spec(entity, tmp_path), tmp_path)
    assert spec["featurization"] == {
        "mode": "custom",
        "blocked_transformers": ["TfIdf"],
        "column_name_and_types": {"id": "Text"},
        "transformer_params": {"Imputer": [{"fields": ["weight"], "parameters": {"strategy": "median"}}]},
    }
