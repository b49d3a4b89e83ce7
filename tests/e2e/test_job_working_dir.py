"""A command job's working directory holds ``./outputs`` and ``./logs``, as Azure's does, with or without
``code:``; what the command writes there becomes the job's artifacts (``outputs/...``, ``logs/...``)."""

from __future__ import annotations

from tests.e2e.test_cli_jobs import write

ENV = "environment: azureml:AzureML-sklearn-1.5@latest\n"


def test_a_job_without_code_writes_to_outputs_and_logs(cli, tmp_path):
    spec = write(
        tmp_path / "job.yml",
        "command: >-\n"
        "  echo hi > ./outputs/x.txt &&\n"
        "  mkdir ./outputs/sub && echo deep > ./outputs/sub/y.txt &&\n"
        "  echo progress > ./logs/train.log &&\n"
        "  ls -a\n" + ENV,
    )
    job = cli.json("job", "create", "--file", str(spec), "--stream")
    assert job["status"] == "Completed", job.get("error")
    assert {"outputs/x.txt", "outputs/sub/y.txt", "logs/train.log"} <= set(job["artifacts"])
    cli.run("job", "download", "--name", job["name"], "--download-path", str(tmp_path / "dl"))
    artifacts = tmp_path / "dl" / "artifacts"
    assert (artifacts / "outputs" / "x.txt").read_text() == "hi\n"
    assert (artifacts / "outputs" / "sub" / "y.txt").read_text() == "deep\n"
    assert (artifacts / "logs" / "train.log").read_text() == "progress\n"
    assert "outputs/x.txt" in cli.json("job", "show", "--name", job["name"])["artifacts"]


def test_a_job_with_code_finds_the_folders_beside_its_files(cli, tmp_path):
    write(
        tmp_path / "src" / "main.py",
        "open('outputs/result.txt', 'w').write('42')\nprint(sorted(__import__('os').listdir('.')))\n",
    )
    spec = write(tmp_path / "job.yml", "code: ./src\ncommand: python main.py\n" + ENV)
    job = cli.json("job", "create", "--file", str(spec), "--stream")
    assert job["status"] == "Completed", job.get("error")
    log = (cli.home / "workspaces/default/jobs" / job["name"] / "artifacts/user_logs/std_log.txt").read_text()
    assert "['logs', 'main.py', 'outputs']" in log
    assert "outputs/result.txt" in job["artifacts"]
    # the snapshot keeps the code only: the folders moved to the artifacts
    snapshot = cli.home / "workspaces/default/jobs" / job["name"] / "snapshot"
    assert sorted(p.name for p in snapshot.iterdir()) == ["main.py"]


def test_folders_left_empty_are_no_artifacts(cli, tmp_path):
    spec = write(tmp_path / "job.yml", "command: test -d ./outputs && test -d ./logs\n" + ENV)
    job = cli.json("job", "create", "--file", str(spec), "--stream")
    assert job["status"] == "Completed", job.get("error")
    artifacts = cli.home / "workspaces/default/jobs" / job["name"] / "artifacts"
    assert not (artifacts / "outputs").exists() and not (artifacts / "logs").exists()
    assert not [a for a in job["artifacts"] if a.startswith(("outputs/", "logs/"))]


def test_a_file_named_outputs_in_the_code_is_left_alone(cli, tmp_path):
    write(tmp_path / "src" / "outputs", "not a folder\n")
    spec = write(tmp_path / "job.yml", "code: ./src\ncommand: cat outputs && test -d logs\n" + ENV)
    job = cli.json("job", "create", "--file", str(spec), "--stream")
    assert job["status"] == "Completed", job.get("error")
    log = (cli.home / "workspaces/default/jobs" / job["name"] / "artifacts/user_logs/std_log.txt").read_text()
    assert "not a folder" in log
