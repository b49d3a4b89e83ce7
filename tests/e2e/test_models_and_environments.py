"""Models from paths and job outputs; environments with conda files, curated names, images."""

from __future__ import annotations

import pytest

from tests.e2e.test_cli_bad_input import assert_rejected
from tests.e2e.test_cli_jobs import write


@pytest.fixture
def finished_job(cli, tmp_path):
    spec = write(
        tmp_path / "job.yml",
        (
            "command: mkdir -p outputs/model && echo weights > outputs/model/w.bin "
            "&& echo 42 > ${{outputs.extra}}/x.txt "
            "&& python -c \"import mlflow; mlflow.start_run(); mlflow.log_text('hi', 'notes/readme.txt')\"\n"
            "environment: azureml:AzureML-sklearn-1.5@latest\noutputs:\n  extra: {type: uri_folder}\n"
        ),
    )
    return cli.json("job", "create", "--file", str(spec), "--stream")


def test_register_models_from_every_source(cli, tmp_path, finished_job):
    name = finished_job["name"]
    m1 = cli.json(
        "model",
        "create",
        "--name",
        "m",
        "--path",
        f"azureml://jobs/{name}/outputs/artifacts/paths/outputs/model/",
        "--type",
        "custom_model",
    )
    assert m1["version"] == "1" and m1["job_name"] == name and m1["type"] == "custom_model"
    m2 = cli.json("model", "create", "--name", "m", "--path", f"azureml://jobs/{name}/outputs/extra/paths/x.txt")
    assert m2["version"] == "2"
    m3 = cli.json(
        "model",
        "create",
        "--name",
        "m",
        "--path",
        f"runs:/{name}/notes/readme.txt",
        "--set",
        "tags.stage=dev",
        "--description",
        "from runs:/",
    )
    assert m3["version"] == "3" and m3["tags"] == {"stage": "dev"} and m3["description"] == "from runs:/"
    local = write(tmp_path / "local-model" / "model.onnx", "not really onnx")
    m4 = cli.json("model", "create", "--name", "local", "--path", str(local.parent), "--version", "7")
    assert m4["version"] == "7"
    assert [m["version"] for m in cli.json("model", "list", "--name", "m")] == ["3", "2", "1"]
    assert cli.json("model", "show", "--name", "m")["version"] == "3"
    assert cli.json("model", "show", "--name", "m", "--version", "1")["path"].endswith("/outputs/model/")
    assert_rejected(
        cli, ["model", "create", "--name", "local", "--path", str(local), "--version", "7"], "already exists", "version"
    )
    cli.run("model", "download", "--name", "m", "--version", "1", "--download-path", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "m" / "model" / "w.bin").read_text() == "weights\n"
    cli.run("model", "download", "--name", "m", "--version", "3", "--download-path", str(tmp_path / "dl3"))
    assert (tmp_path / "dl3" / "m" / "readme.txt").read_text() == "hi"


def test_model_yaml_and_mlflow_model_check(cli, tmp_path):
    folder = tmp_path / "mlflow-model"
    write(folder / "model.pkl", "x")
    spec = write(
        tmp_path / "model.yml",
        "$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\n"
        "name: flow\npath: ./mlflow-model\ntype: mlflow_model\n",
    )
    assert_rejected(cli, ["model", "create", "--file", str(spec)], "MLmodel")
    write(folder / "MLmodel", "flavors: {}\n")
    assert cli.json("model", "create", "--file", str(spec))["type"] == "mlflow_model"
    bad = write(tmp_path / "bad.yml", "name: flow\npath: ./mlflow-model\nflavour: x\n")
    assert_rejected(cli, ["model", "create", "--file", str(bad)], "flavour")


def test_environment_with_conda_file_builds_a_cached_venv(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("AMLEMU_ENV_CACHE", str(cli.home / "cache" / "venvs"))  # a first build, not the machine's
    write(tmp_path / "conda.yml", "name: tiny\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - six\n")
    spec = write(
        tmp_path / "env.yml",
        "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
        "name: tiny-env\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04\n"
        "conda_file: ./conda.yml\ndescription: six only\n",
    )
    env = cli.json("environment", "create", "--file", str(spec))
    assert env["version"] == "1" and env["conda_file"]["dependencies"][2] == {"pip": ["six"]}
    assert "cannot be pulled" in env["local_runtime"] and "six" in env["local_runtime"]
    assert cli.json("environment", "show", "--name", "tiny-env")["version"] == "1"
    job_spec = write(
        tmp_path / "job.yml",
        "command: python -c \"import six, sys; print('six', six.__version__, sys.prefix)\"\n"
        "environment: azureml:tiny-env:1\n",
    )
    first = cli.json("job", "create", "--file", str(job_spec), "--stream")
    assert first["status"] == "Completed"
    log = (cli.home / "workspaces/default/jobs" / first["name"] / "artifacts/user_logs/std_log.txt").read_text()
    assert "building environment" in log and "six " in log and "/cache/venvs/" in log
    second = cli.json("job", "create", "--file", str(job_spec), "--stream")
    log2 = (cli.home / "workspaces/default/jobs" / second["name"] / "artifacts/user_logs/std_log.txt").read_text()
    assert "building environment" not in log2, "the second job must reuse the cached venv"


def test_bad_environments(cli, tmp_path):
    write(tmp_path / "conda.yml", "dependencies:\n  - cudatoolkit=11.8\n")
    spec = write(tmp_path / "env.yml", "name: gpu\nimage: x/y\nconda_file: ./conda.yml\n")
    assert_rejected(cli, ["environment", "create", "--file", str(spec)], "cudatoolkit", "no pip equivalent")
    write(tmp_path / "conda2.yml", "dependencies:\n  - pip:\n    - amlemu-surely-not-a-real-package-xyz\n")
    spec2 = write(tmp_path / "env2.yml", "name: nope\nimage: x/y\nconda_file: ./conda2.yml\n")
    cli.json("environment", "create", "--file", str(spec2))
    job = write(tmp_path / "job.yml", "command: echo never\nenvironment: azureml:nope@latest\n")
    proc = cli.run("job", "create", "--file", str(job), "--stream", check=False)
    assert proc.returncode != 0 and "amlemu-surely-not-a-real-package-xyz" in proc.stdout
    assert_rejected(cli, ["environment", "create", "--name", "empty"], "image", "build")
    assert_rejected(cli, ["environment", "show", "--name", "ghost"], "ghost", "not found")
