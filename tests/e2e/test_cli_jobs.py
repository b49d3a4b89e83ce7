"""Command jobs through the ``amlemu`` CLI, as a user runs them: separate processes, real jobs."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from emulator.runtime import proctree
from tests.conftest import SAMPLES


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def wait_status(cli, name, statuses=("Completed", "Failed", "Canceled"), timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = cli.json("job", "show", "--name", name)
        if job["status"] in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {name} still {job['status']} after {timeout} s")


def test_iris_job_end_to_end(cli, tmp_path):
    job = cli.json("job", "create", "--file", str(SAMPLES / "iris" / "job.yml"), "--set", "inputs.C=0.8", "--stream")
    assert job["status"] == "Completed"
    assert job["inputs"]["C"] == 0.8
    assert job["experiment_name"] == "iris"
    assert job["id"].endswith(f"/jobs/{job['name']}")
    assert job["params"]["C"] == "0.8"
    assert job["metrics"]["accuracy"] > 0.8
    assert "outputs/model.onnx" in job["artifacts"] and "user_logs/std_log.txt" in job["artifacts"]
    shown = cli.json("job", "show", "--name", job["name"])
    assert shown["metrics"] == job["metrics"]
    listed = cli.json("job", "list")
    assert [j["name"] for j in listed] == [job["name"]]
    cli.run("job", "download", "--name", job["name"], "--download-path", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "artifacts" / "outputs" / "model.onnx").stat().st_size > 100


def test_inputs_outputs_env_vars_and_statuses(cli, tmp_path):
    data = write(tmp_path / "data" / "numbers.txt", "1\n2\n3\n")
    write(
        tmp_path / "src" / "run.py",
        (
            "import os, sys\n"
            "total = sum(int(x) for x in open(sys.argv[1]))\n"
            "open(os.path.join(sys.argv[2], 'total.txt'), 'w').write(str(total * int(sys.argv[3])))\n"
            "os.makedirs('outputs', exist_ok=True); open('outputs/done.txt', 'w').write('ok')\n"
            "print('GREETING', os.environ['GREETING'], 'RUN', os.environ['MLFLOW_RUN_ID'],\n"
            "      'IN', os.environ['AZURE_ML_INPUT_factor'])\n"
        ),
    )
    spec = write(
        tmp_path / "job.yml",
        (
            "code: ./src\n"
            "command: python run.py ${{inputs.numbers}} ${{outputs.result}} ${{inputs.factor}} "
            "[--optional ${{inputs.absent}}]\n"
            "inputs:\n  factor: 2\n  numbers: {type: uri_file, path: ./data/numbers.txt}\n"
            "outputs:\n  result: {type: uri_folder}\n"
            "environment: azureml://registries/azureml/environments/sklearn-1.5/labels/latest\n"
            "environment_variables: {GREETING: hello}\n"
            "display_name: sums\ntags: {team: ml}\ndescription: adds numbers\n"
        ),
    )
    job = cli.json("job", "create", "--file", str(spec), "--name", "sum-job-1", "--stream")
    assert job["name"] == "sum-job-1" and job["status"] == "Completed"
    assert job["display_name"] == "sums" and job["tags"] == {"team": "ml"}
    assert job["inputs"]["numbers"]["path"] == str(data)
    log = (
        cli.home / "workspaces" / "default" / "jobs" / "sum-job-1" / "artifacts" / "user_logs" / "std_log.txt"
    ).read_text()
    assert "GREETING hello RUN sum-job-1 IN 2" in log
    cli.run("job", "download", "--name", "sum-job-1", "--all", "--download-path", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "named-outputs" / "result" / "total.txt").read_text() == "12"
    assert (tmp_path / "dl" / "artifacts" / "outputs" / "done.txt").read_text() == "ok"


def test_create_returns_at_once_and_job_outlives_the_cli(cli, tmp_path):
    marker = tmp_path / "finished.txt"
    spec = write(
        tmp_path / "job.yml",
        f"command: sleep 3 && echo finished > {marker}\nenvironment: azureml:AzureML-sklearn-1.5@latest\n",
    )
    job = cli.json("job", "create", "--file", str(spec))  # the CLI process has exited here
    assert job["status"] in ("Queued", "Preparing", "Running") and not marker.exists()
    done = wait_status(cli, job["name"])
    assert done["status"] == "Completed" and marker.read_text() == "finished\n"


def test_failed_job_records_exit_code_and_log_tail(cli, tmp_path):
    spec = write(
        tmp_path / "job.yml",
        "command: echo about to fail; echo oops >&2; exit 3\nenvironment: azureml:AzureML-sklearn-1.5@latest\n",
    )
    proc = cli.run("job", "create", "--file", str(spec), "--stream", check=False)
    assert proc.returncode != 0
    assert "oops" in proc.stdout and "Status: Failed" in proc.stdout
    name = proc.stdout.split("RunId: ", 1)[1].split()[0]
    job = cli.json("job", "show", "--name", name)
    assert job["status"] == "Failed"
    assert job["error"]["exit_code"] == 3
    assert "exited with code 3" in job["error"]["message"] and "oops" in job["error"]["message"]
    assert cli.run("job", "stream", "--name", name, check=False).returncode != 0


def test_cancel_stops_the_whole_process_tree(cli, tmp_path):
    pidfile = tmp_path / "pids.txt"
    spec = write(
        tmp_path / "job.yml",
        (
            f"command: (sleep 300 & echo $! >> {pidfile}; wait) & echo $! >> {pidfile}; sleep 300\n"
            "environment: azureml:AzureML-sklearn-1.5@latest\n"
        ),
    )
    job = cli.json("job", "create", "--file", str(spec))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not pidfile.exists() or len(pidfile.read_text().split()) < 2):
        time.sleep(0.1)
    pids = [int(p) for p in pidfile.read_text().split()]
    assert all(proctree.is_alive(p) for p in pids)
    cli.run("job", "cancel", "--name", job["name"])
    done = wait_status(cli, job["name"], timeout=30)
    assert done["status"] == "Canceled"
    assert not any(proctree.is_alive(p) for p in pids), "cancel left processes behind"


@pytest.mark.parametrize("victim", ["command", "supervisor"])
def test_sigkill_fails_the_job_with_a_reason(cli, tmp_path, victim):
    spec = write(
        tmp_path / "job.yml", "command: echo started; sleep 300\nenvironment: azureml:AzureML-sklearn-1.5@latest\n"
    )
    job = cli.json("job", "create", "--file", str(spec))
    running = wait_status(cli, job["name"], statuses=("Running",))
    from emulator.store import open_store

    record = open_store().get_job(job["name"])
    supervisor = record["pid"]
    target = supervisor if victim == "supervisor" else record["run_pid"]
    os.kill(target, signal.SIGKILL)
    done = wait_status(cli, running["name"], timeout=30)
    assert done["status"] == "Failed"
    if victim == "command":
        assert "killed by signal SIGKILL" in done["error"]["message"]
    else:
        assert "supervisor process" in done["error"]["message"] and "ended unexpectedly" in done["error"]["message"]
        assert not proctree.is_alive(record["run_pid"]), "the lost job's command was left running"


def test_twenty_jobs_from_separate_processes(cli, tmp_path):
    import subprocess
    import sys

    spec = write(tmp_path / "job.yml", "command: echo job $RANDOM\nenvironment: azureml:AzureML-sklearn-1.5@latest\n")
    env = {**os.environ, "AMLEMU_HOME": str(cli.home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "emulator.cli.main", "job", "create", "--file", str(spec)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for _ in range(20)
    ]
    names = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        names.append(json.loads(out)["name"])
    assert len(set(names)) == 20
    for name in names:
        assert wait_status(cli, name, timeout=120)["status"] == "Completed"
    listed = cli.json("job", "list", "--all-results")
    assert sorted(j["name"] for j in listed) == sorted(names)


def test_mlflow_autolog_and_the_diabetes_sample(cli, tmp_path):
    write(
        tmp_path / "src" / "auto.py",
        (
            "import mlflow\nfrom sklearn.datasets import load_iris\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "mlflow.autolog()\nX, y = load_iris(return_X_y=True)\nLogisticRegression(max_iter=300).fit(X, y)\n"
        ),
    )
    spec = write(
        tmp_path / "job.yml", "code: ./src\ncommand: python auto.py\nenvironment: azureml:AzureML-sklearn-1.5@latest\n"
    )
    auto = cli.json("job", "create", "--file", str(spec), "--stream")
    assert auto["status"] == "Completed"
    assert auto["metrics"]["training_accuracy_score"] > 0.9 and auto["params"]["max_iter"] == "300"
    diabetes = cli.json("job", "create", "--file", str(SAMPLES / "diabetes" / "job.yml"), "--stream")
    assert diabetes["status"] == "Completed" and diabetes["params"]["alpha"] == "0.5"
    assert 0.3 < diabetes["metrics"]["r2"] < 1 and "outputs/model.onnx" in diabetes["artifacts"]
