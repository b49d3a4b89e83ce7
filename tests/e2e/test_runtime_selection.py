"""Runtime selection without an engine: explicit docker fails clearly, auto falls back and says so."""

from tests.e2e.test_cli_bad_input import assert_nothing_recorded, assert_rejected
from tests.e2e.test_cli_jobs import write

HELLO = "command: echo hi\nenvironment: azureml:AzureML-sklearn-1.5@latest\n"


def test_explicit_docker_without_an_engine(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setenv("AMLEMU_RUNTIME", "docker")
    spec = write(tmp_path / "job.yml", HELLO)
    assert_rejected(
        cli, ["job", "create", "--file", str(spec)], "No Docker engine answers", "dockerd", "AMLEMU_RUNTIME=process"
    )
    assert_nothing_recorded(cli)


def test_auto_falls_back_to_processes_and_says_so(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setenv("AMLEMU_RUNTIME", "auto")
    spec = write(tmp_path / "job.yml", HELLO)
    job = cli.json("job", "create", "--file", str(spec), "--stream")
    assert job["status"] == "Completed"
    log = (cli.home / "workspaces/default/jobs" / job["name"] / "artifacts/user_logs/std_log.txt").read_text()
    assert "no Docker engine answers; running on the process runtime" in log and "hi" in log


def test_unknown_runtime(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("AMLEMU_RUNTIME", "kubernetes")
    assert_rejected(
        cli, ["job", "create", "--file", str(write(tmp_path / "job.yml", HELLO))], "kubernetes", "process, docker, auto"
    )
