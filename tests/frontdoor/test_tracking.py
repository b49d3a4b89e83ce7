"""The workspace's MLflow tracking URI through `amlemu serve`: plain mlflow, in any process, on the workspace's runs.

Clients run in fresh processes whose only variable is ``MLFLOW_TRACKING_URI`` (no
``MLFLOW_ALLOW_FILE_STORE``, no ``AMLEMU_HOME``), as a separate notebook would; what they
log is read back over HTTP and from the workspace's file store, which jobs write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from emulator.tracking import filestore

LOG_A_RUN = """
import json, pathlib, sys, mlflow
mlflow.set_experiment(sys.argv[1])
with mlflow.start_run() as run:
    mlflow.log_param("alpha", "0.5")
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    notes = pathlib.Path("notes.txt")
    notes.write_text("trained on iris")
    mlflow.log_artifact(str(notes), artifact_path="reports")
print(json.dumps({"run_id": run.info.run_id, "experiment_id": run.info.experiment_id}))
"""

READ_A_RUN = """
import json, sys, mlflow
run = mlflow.get_run(sys.argv[1])
history = mlflow.MlflowClient().get_metric_history(run.info.run_id, sys.argv[2])
found = mlflow.search_runs(experiment_ids=[run.info.experiment_id], output_format="list")
print(json.dumps({
    "status": run.info.status,
    "params": run.data.params,
    "metrics": run.data.metrics,
    "history": [[m.step, m.value] for m in history],
    "experiment_id": run.info.experiment_id,
    "runs_in_experiment": sorted(r.info.run_id for r in found),
}))
"""


def _mlflow_process(tracking_uri: str, script: str, *args: str, cwd: Path) -> dict:
    """Run ``script`` in a fresh interpreter whose whole environment is ``MLFLOW_TRACKING_URI``."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={"MLFLOW_TRACKING_URI": tracking_uri},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _client(tracking_uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri)


@pytest.fixture
def tracking_uri(sdk, workspace_name) -> str:
    return sdk.workspaces.get(workspace_name).mlflow_tracking_uri


def test_plain_mlflow_in_another_process_logs_to_the_workspace(tracking_uri, front_door, workspace_name, tmp_path):
    logged = _mlflow_process(tracking_uri, LOG_A_RUN, "notebook", cwd=tmp_path)
    run_id = logged["run_id"]
    # the client used the server, not a store of its own in its working folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]

    # over HTTP, from this process
    client = _client(tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"alpha": "0.5"}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert [f.path for f in client.list_artifacts(run_id, "reports")] == ["reports/notes.txt"]
    downloaded = client.download_artifacts(run_id, "reports/notes.txt", str(tmp_path / "dl"))
    assert Path(downloaded).read_text() == "trained on iris"

    # the same run in the workspace's file store, as the local engine reads it
    run_dir = front_door.home / "workspaces" / workspace_name / "mlruns" / logged["experiment_id"] / run_id
    local = filestore.read_run(run_dir)
    assert local["params"] == {"alpha": "0.5"} and local["status"] == "FINISHED"
    assert [(step, value) for _, value, step in filestore.metric_history(run_dir, "loss")] == [
        (0, 1.0),
        (1, 0.5),
        (2, 1 / 3),
    ]
    artifact = Path(run.info.artifact_uri.removeprefix("file://")) / "reports" / "notes.txt"
    assert artifact.is_relative_to(front_door.home / "workspaces" / workspace_name)
    assert artifact.read_text() == "trained on iris"


def test_a_job_run_reads_over_http_and_shares_the_experiment(tracking_uri, front_door, workspace_name, tmp_path):
    # a notebook creates the experiment over HTTP first; the job then logs into that same experiment
    notebook = _mlflow_process(tracking_uri, LOG_A_RUN, "shared-exp", cwd=tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(
        "import mlflow\n"
        "mlflow.log_param('C', '0.8')\n"
        "for step in range(4):\n"
        "    mlflow.log_metric('acc', 0.5 + step / 10, step=step)\n"
    )
    (tmp_path / "job.yml").write_text(
        "code: src\ncommand: python train.py\nenvironment: azureml:AzureML-sklearn-1.5@latest\n"
        "experiment_name: shared-exp\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("AMLEMU_BACKEND", "AMLEMU_WORKSPACE")}
    env["AMLEMU_HOME"] = str(front_door.home)
    created = subprocess.run(
        [sys.executable, "-m", "emulator.cli.main", "job", "create", "-w", workspace_name, "--file", "job.yml"]
        + ["--stream", "--query", "[name, status]", "-o", "tsv"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert created.returncode == 0, created.stderr[-3000:]
    job_name, status = created.stdout.split()[-2:]
    assert status == "Completed", created.stdout[-3000:]

    read = _mlflow_process(tracking_uri, READ_A_RUN, job_name, "acc", cwd=tmp_path)
    assert read["status"] == "FINISHED" and read["params"] == {"C": "0.8"} and read["metrics"] == {"acc": 0.8}
    assert read["history"] == [[0, 0.5], [1, 0.6], [2, 0.7], [3, 0.8]]
    assert read["experiment_id"] == notebook["experiment_id"]  # one experiment of that name, not two
    assert read["runs_in_experiment"] == sorted([job_name, notebook["run_id"]])


def test_the_v2_path_azureml_mlflow_builds_serves_the_same_workspace(tracking_uri, front_door, front_env, tmp_path):
    logged = _mlflow_process(tracking_uri, LOG_A_RUN, "v1-then-v2", cwd=tmp_path)
    v2 = tracking_uri.replace("/mlflow/v1.0/", "/mlflow/v2.0/")
    assert v2 != tracking_uri
    read = _mlflow_process(v2, READ_A_RUN, logged["run_id"], "loss", cwd=tmp_path)
    assert read["params"] == {"alpha": "0.5"} and read["history"] == [[0, 1.0], [1, 0.5], [2, 1 / 3]]
    # azureml-mlflow's own request: https on the front door's TLS listener, with a bearer token
    from azure.identity import DefaultAzureCredential

    token = DefaultAzureCredential().get_token(f"https://127.0.0.1:{front_door.port + 1}/.default").token
    https = v2.replace(f"http://127.0.0.1:{front_door.port}/", f"https://127.0.0.1:{front_door.port + 1}/")
    r = requests.get(
        f"{https}/api/2.0/mlflow/runs/get",
        params={"run_id": logged["run_id"]},
        headers={"Authorization": f"Bearer {token}"},
        verify=front_env["REQUESTS_CA_BUNDLE"],
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["run"]["data"]["params"] == [{"key": "alpha", "value": "0.5"}]


def test_two_workspaces_do_not_see_each_others_runs(sdk, tracking_uri, workspace_name):
    other_uri = sdk.workspaces.get(f"{workspace_name}-b").mlflow_tracking_uri
    assert other_uri != tracking_uri
    ours, theirs = _client(tracking_uri), _client(other_uri)
    experiment_id = ours.create_experiment("private")
    run = ours.create_run(experiment_id)
    ours.log_metric(run.info.run_id, "secret", 1.0)

    from mlflow.exceptions import MlflowException

    assert theirs.get_experiment_by_name("private") is None
    with pytest.raises(MlflowException) as err:
        theirs.get_run(run.info.run_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert [e.name for e in theirs.search_experiments()] == ["Default"]
    assert ours.get_run(run.info.run_id).data.metrics == {"secret": 1.0}


def test_unserved_apis_answer_in_mlflows_error_shape(tracking_uri, front_door, front_env):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as err:
        _client(tracking_uri).search_registered_models()
    assert err.value.error_code == "NOT_IMPLEMENTED" and "ml_client.models" in err.value.message
    r = requests.post(f"{tracking_uri}/api/2.0/mlflow/runs/teleport", json={}, timeout=30)
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    # no token is needed (loopback, as the file store), and one sent anyway does no harm
    from azure.identity import DefaultAzureCredential

    token = DefaultAzureCredential().get_token(f"https://127.0.0.1:{front_door.port + 1}/.default").token
    r = requests.get(
        f"{tracking_uri}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "Default"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["experiment"]["experiment_id"] == "0"


def test_an_invalid_workspace_name_is_refused_in_mlflows_shape(front_door):
    url = (
        f"http://127.0.0.1:{front_door.port}/mlflow/v1.0/subscriptions/s/resourceGroups/r/providers/"
        "Microsoft.MachineLearningServices/workspaces/x/api/2.0/mlflow/experiments/search"
    )
    r = requests.post(url, json={"max_results": 10}, timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'x'" in r.json()["message"]
