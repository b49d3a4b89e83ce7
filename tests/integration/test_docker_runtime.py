"""Jobs on the docker runtime: real containers from an offline-built image, same results as processes."""

from __future__ import annotations

import os
import stat
import time

import docker
import pytest

from tests.conftest import SAMPLES
from tests.e2e.test_cli_jobs import wait_status, write

pytestmark = pytest.mark.docker


def job_containers(name: str):
    return docker.from_env().containers.list(all=True, ignore_removed=True, filters={"label": f"com.amlemu.job={name}"})


@pytest.fixture
def docker_cli(cli, monkeypatch):
    monkeypatch.setenv("AMLEMU_RUNTIME", "docker")
    docker.from_env().ping()  # fails (never skips) without an engine
    return cli


def test_iris_on_docker_matches_the_process_runtime(docker_cli, monkeypatch):
    in_docker = docker_cli.json("job", "create", "--file", str(SAMPLES / "iris" / "job.yml"), "--stream")
    monkeypatch.setenv("AMLEMU_RUNTIME", "process")
    in_process = docker_cli.json("job", "create", "--file", str(SAMPLES / "iris" / "job.yml"), "--stream")
    assert in_docker["status"] == in_process["status"] == "Completed"
    assert in_docker["metrics"] == in_process["metrics"] and in_docker["params"] == in_process["params"]
    assert "outputs/model.onnx" in in_docker["artifacts"]
    assert job_containers(in_docker["name"]) == [], "the job's container must be removed when it ends"


def test_container_runs_as_the_invoking_user_without_network(docker_cli, tmp_path):
    spec = write(
        tmp_path / "job.yml",
        'command: id -u; python -c "import socket; print(socket.if_nameindex())"\n'
        "environment: azureml:AzureML-sklearn-1.5@latest\n",
    )
    job = docker_cli.json("job", "create", "--file", str(spec), "--stream")
    log = (docker_cli.home / "workspaces/default/jobs" / job["name"] / "artifacts/user_logs/std_log.txt").read_text()
    output = [line for line in log.splitlines() if not line.startswith("[")]  # less amlemu's lines (an image build)
    assert output[0] == str(os.getuid())  # what it writes is the invoker's, nothing is opened to others
    assert "eth0" not in log, "job containers publish nothing and join no network"


def test_a_job_container_gets_only_the_job_s_environment_no_privileges_and_opens_no_file(
    docker_cli, tmp_path, monkeypatch
):
    monkeypatch.setenv("AMLEMU_TEST_SECRET_XYZ", "caller-shell-secret")  # in the submitting shell only
    spec = write(
        tmp_path / "job.yml",
        (
            "command: >-\n"
            "  env; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; cat /sys/fs/cgroup/pids.max 2>/dev/null\n"
            "  || cat /sys/fs/cgroup/pids/pids.max; echo home $HOME; touch $HOME/written;\n"
            "  mkdir -p outputs/deep; echo kept > outputs/deep/kept.txt; echo out > ${{outputs.out}}/result.txt\n"
            "environment: azureml:AzureML-sklearn-1.5@latest\n"
            "environment_variables:\n  MY_JOB_VAR: from-the-job\n"
            "outputs:\n  out: {type: uri_folder}\n"
        ),
    )
    job = docker_cli.json("job", "create", "--file", str(spec), "--stream")
    folder = docker_cli.home / "workspaces/default/jobs" / job["name"]
    log = (folder / "artifacts/user_logs/std_log.txt").read_text()
    assert job["status"] == "Completed", log
    assert "AMLEMU_TEST_SECRET_XYZ" not in log and "caller-shell-secret" not in log
    assert "MY_JOB_VAR=from-the-job" in log and f"AZUREML_RUN_ID={job['name']}" in log
    assert "MLFLOW_TRACKING_URI=file://" in log
    assert "CapEff:\t0000000000000000" in log and "NoNewPrivs:\t1" in log
    assert "\n4096\n" in log and "home /tmp" in log
    assert "outputs/deep/kept.txt" in job["artifacts"]
    assert (folder / "outputs/out/result.txt").read_text() == "out\n"
    checked = 0
    for root, _dirs, files in os.walk(folder):
        for path in [root, *(os.path.join(root, f) for f in files)]:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                continue
            assert not info.st_mode & stat.S_IWOTH, f"{path} is world-writable ({oct(info.st_mode)})"
            assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid()), path
            checked += 1
    assert checked > 5


def test_container_killed_from_outside_fails_the_job(docker_cli, tmp_path):
    spec = write(
        tmp_path / "job.yml", "command: echo started; sleep 300\nenvironment: azureml:AzureML-sklearn-1.5@latest\n"
    )
    job = docker_cli.json("job", "create", "--file", str(spec))
    wait_status(docker_cli, job["name"], statuses=("Running",), timeout=120)
    deadline = time.monotonic() + 30
    while not job_containers(job["name"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    job_containers(job["name"])[0].kill()
    done = wait_status(docker_cli, job["name"], timeout=60)
    assert done["status"] == "Failed"
    assert "137" in done["error"]["message"] and "SIGKILL" in done["error"]["message"]
    assert job_containers(job["name"]) == []


def test_cancel_stops_the_container(docker_cli, tmp_path):
    spec = write(tmp_path / "job.yml", "command: sleep 300\nenvironment: azureml:AzureML-sklearn-1.5@latest\n")
    job = docker_cli.json("job", "create", "--file", str(spec))
    wait_status(docker_cli, job["name"], statuses=("Running",), timeout=120)
    docker_cli.run("job", "cancel", "--name", job["name"])
    assert wait_status(docker_cli, job["name"], timeout=60)["status"] == "Canceled"
    deadline = time.monotonic() + 30
    while job_containers(job["name"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job_containers(job["name"]) == []


def test_ten_jobs_at_once_leave_no_container(docker_cli, tmp_path):
    spec = write(
        tmp_path / "job.yml",
        "command: echo job $AZUREML_RUN_ID; sleep 1\nenvironment: azureml:AzureML-sklearn-1.5@latest\n",
    )
    names = [docker_cli.json("job", "create", "--file", str(spec))["name"] for _ in range(10)]
    for name in names:
        assert wait_status(docker_cli, name, timeout=180)["status"] == "Completed"
        log = (docker_cli.home / "workspaces/default/jobs" / name / "artifacts/user_logs/std_log.txt").read_text()
        assert f"job {name}" in log
    left = docker.from_env().containers.list(all=True, ignore_removed=True, filters={"label": "com.amlemu.kind=job"})
    assert [c for c in left if c.labels.get("com.amlemu.job") in names] == []


def test_system_prune_removes_only_what_amlemu_created(docker_cli, monkeypatch):
    # --days 0 on a cache of this test's own, not the machine's (which other tests' jobs are using)
    monkeypatch.setenv("AMLEMU_ENV_CACHE", str(docker_cli.home / "cache" / "venvs"))
    client = docker.from_env()
    ours = client.containers.create(
        "amlemu/base:bookworm", ["true"], labels={"com.amlemu.kind": "job", "com.amlemu.test": "1"}
    )
    theirs = client.containers.create("amlemu/base:bookworm", ["true"], labels={"com.amlemu.test": "1"})
    other_home = client.containers.create(
        "amlemu/base:bookworm",
        ["true"],
        labels={
            "com.amlemu.kind": "job",
            "com.amlemu.test": "1",
            "com.amlemu.home": str(docker_cli.home.parent / "another"),
        },
    )
    mine = client.containers.create(
        "amlemu/base:bookworm",
        ["true"],
        labels={"com.amlemu.kind": "job", "com.amlemu.test": "1", "com.amlemu.home": str(docker_cli.home.resolve())},
    )
    venvs = docker_cli.home / "cache" / "venvs"
    (venvs / "old").mkdir(parents=True)
    (venvs / "old" / ".amlemu-ready").write_text("[]")
    try:
        removed = docker_cli.json("system", "prune", "--days", "0")
        assert ours.name in removed["containers"] and theirs.name not in removed["containers"]
        assert mine.name in removed["containers"] and other_home.name not in removed["containers"]  # this home's only
        assert removed["virtualenvs"] == ["old"] and not (venvs / "old").exists()
        client.containers.get(theirs.id)  # still there
        client.containers.get(other_home.id)
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(ours.id)
    finally:
        for c in (ours, theirs, other_home, mine):
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass


def test_a_sweep_s_trials_run_in_containers(docker_cli, tmp_path):
    # the trials' supervisors are forked from the sweep's orchestrator, which has talked to the engine
    # (each gets a client of its own: emulator.runtime.engine forgets the parent's at fork); three at once
    from emulator.testing.trials import SLEEPER

    write(tmp_path / "src" / "sleeper.py", SLEEPER)
    spec = write(
        tmp_path / "sweep.yml",
        (
            "type: sweep\n"
            "trial:\n  code: ./src\n  command: python sleeper.py ${{search_space.s}} in-docker\n"
            "  environment: azureml:AzureML-sklearn-1.5@latest\n"
            "sampling_algorithm: grid\n"
            "search_space:\n  s:\n    type: choice\n    values: [0.2, 0.3, 0.4]\n"
            "objective:\n  goal: maximize\n  primary_metric: accuracy\n"
            "limits:\n  max_total_trials: 3\n  max_concurrent_trials: 3\n"
        ),
    )
    sweep = docker_cli.json("job", "create", "--file", str(spec), "--name", "dockersweep", "--stream")
    assert sweep["status"] == "Completed"
    trials = docker_cli.json("job", "list", "--parent-job-name", "dockersweep")
    assert len(trials) == 3 and all(t["status"] == "Completed" for t in trials)
    assert sweep["properties"]["best_child_run_id"] == "dockersweep_0"  # accuracy = 1 / (1 + s): the shortest
    for trial in trials:
        assert job_containers(trial["name"]) == []


def test_a_container_job_without_code_writes_outputs_and_logs(docker_cli, tmp_path):
    spec = write(
        tmp_path / "job.yml",
        "command: echo hi > ./outputs/x.txt && echo step > ./logs/train.log && pwd\n"
        "environment: azureml:AzureML-sklearn-1.5@latest\n",
    )
    job = docker_cli.json("job", "create", "--file", str(spec), "--stream")
    assert job["status"] == "Completed", job.get("error")
    folder = docker_cli.home / "workspaces/default/jobs" / job["name"]
    assert {"outputs/x.txt", "logs/train.log"} <= set(job["artifacts"])
    assert (folder / "artifacts/outputs/x.txt").read_text() == "hi\n"
    assert (folder / "artifacts/outputs/x.txt").stat().st_uid == os.getuid()  # written as the invoker
    assert str(folder / "snapshot") in (folder / "artifacts/user_logs/std_log.txt").read_text()
