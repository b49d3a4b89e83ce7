"""score.py behind a managed online endpoint: deployed with its conda environment, called over HTTP with the key."""

import pytest


def test_scoring(aml_deploy, iris_model):
    ep = aml_deploy(model=iris_model, code="src", scoring_script="score.py", environment="env/conda.yml")

    status, body = ep.invoke({"data": [[5.1, 3.5, 1.4, 0.2]]})
    assert status == 200 and body == [0]

    status, body = ep.invoke({"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})
    assert status == 200 and body == [0, 2]

    status, body = ep.invoke({"data": [[5.1, 3.5]]})  # two features: run() raises
    assert status == 424, body  # Azure's answer when the scoring script fails: a "model error"
    assert "each row needs 4 features" in ep.logs()


@pytest.mark.aml_local_only  # on Azure a failed deployment takes many minutes, and its error names no cause
def test_a_model_without_its_file_fails_at_init(aml_deploy, tmp_path):
    empty = tmp_path / "model"
    empty.mkdir()
    (empty / "README.txt").write_text("the training run wrote no model.onnx")

    with pytest.raises(AssertionError) as failure:
        aml_deploy(model=empty, code="src", scoring_script="score.py", environment="env/conda.yml")

    message = str(failure.value)
    assert "did not start" in message
    assert "no model.onnx under AZUREML_MODEL_DIR" in message  # score.py's own message reaches the test
