"""References through the front door: what the real ``MLClient`` resolves ``azureml:<name>:<version>`` to (ARM ids)
comes back to the engine as its own reference, and an asset of another workspace is refused naming it."""

from __future__ import annotations

import pytest

CURATED = "AzureML-sklearn-1.5@latest"
OTHER = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/my-rg/providers"
    "/Microsoft.MachineLearningServices/workspaces/someone-else"
)


def test_a_model_typed_input_by_reference(sdk, front_door, workspace_name, iris_model, capsys):
    """The SDK sends a model input's ``azureml:iris:1`` as the model's ARM id; the job reads the model's files."""
    from azure.ai.ml import Input, command
    from azure.ai.ml.entities import Model

    sdk.workspaces.get(workspace_name)  # the workspace exists before its datastore folder is written
    folder = front_door.home / "workspaces" / workspace_name / "datastores" / "workspaceblobstore" / "models"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes((iris_model / "model.onnx").read_bytes())
    path = "azureml://datastores/workspaceblobstore/paths/models/model.onnx"
    model = sdk.models.create_or_update(Model(name="iris", path=path, type="custom_model"))
    job = sdk.jobs.create_or_update(
        command(
            command="ls ${{inputs.m}}",
            inputs={"m": Input(type="custom_model", path=f"azureml:iris:{model.version}")},
            environment=CURATED,
        )
    )
    sdk.jobs.stream(job.name)
    assert "model.onnx" in capsys.readouterr().out
    assert sdk.jobs.get(job.name).status == "Completed"


@pytest.mark.parametrize(
    "field",
    [
        {"environment": f"{OTHER}/environments/sk/versions/1"},
        {"compute": f"{OTHER}/computes/cpu-cluster"},
        {"inputs": {"d": "INPUT"}},
    ],
    ids=["environment", "compute", "input"],
)
def test_a_job_naming_another_workspace_is_refused(sdk, field):
    from azure.ai.ml import Input, command
    from azure.core.exceptions import HttpResponseError

    kwargs = {"environment": CURATED, **field}
    if "inputs" in field:
        kwargs["inputs"] = {"d": Input(type="uri_folder", path=f"{OTHER}/data/d/versions/1")}
    with pytest.raises(HttpResponseError) as refused:
        sdk.jobs.create_or_update(command(command="echo never", **kwargs))
    assert refused.value.status_code == 400
    message = str(refused.value)
    assert "someone-else" in message and sdk.workspace_name in message
    assert not list(sdk.jobs.list())  # nothing was submitted
