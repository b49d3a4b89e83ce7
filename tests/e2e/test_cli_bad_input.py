"""Bad input: a non-zero exit, a message naming the problem and the fix, nothing half-recorded."""

from __future__ import annotations

import pytest

from tests.e2e.test_cli_jobs import write

GOOD = "command: echo hi\nenvironment: azureml:AzureML-sklearn-1.5@latest\n"


def assert_rejected(cli, args, *needles):
    proc = cli.run(*args, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("ERROR:"), proc.stderr
    for needle in needles:
        assert needle in proc.stderr, f"{needle!r} not in {proc.stderr!r}"
    return proc.stderr


def assert_nothing_recorded(cli):
    assert cli.json("job", "list", "--all-results") == []
    jobs_dir = cli.home / "workspaces" / "default" / "jobs"
    assert not jobs_dir.exists() or list(jobs_dir.iterdir()) == []


@pytest.mark.parametrize(
    "body, needles",
    [
        ("command: echo hi\n  environment: [unclosed\n", ("not valid YAML", "line")),
        (GOOD + "bogus_field: 1\n", ("bogus_field", "azure-ai-ml")),
        ("code: ./missing-src\n" + GOOD, ("missing-src", "does not exist")),
        (
            "command: python x.py ${{inputs.nope}}\nenvironment: azureml:AzureML-sklearn-1.5@latest\ninputs: {C: 1}\n",
            ("inputs.nope", "defined: C"),
        ),
        (GOOD + "inputs:\n  data: {type: uri_file, path: ./no-such.csv}\n", ("no-such.csv", "does not exist")),
        (
            GOOD + "inputs:\n  data: {type: uri_file, path: 'https://example.invalid/iris.csv'}\n",
            ("remote data", "--set inputs.data.path="),
        ),
        (GOOD + "compute: azureml:cpu-cluster\n", ("Compute 'cpu-cluster' not found", "compute")),
        ("command: echo hi\nenvironment: azureml:no-such-env:1\n", ("no-such-env", "amlemu environment create")),
        ("command: echo hi\nenvironment: azureml:AzureML-not-a-real-curated@latest\n", ("not found",)),
        ("environment: azureml:AzureML-sklearn-1.5@latest\n", ("no 'command'",)),
        ("command: echo hi\nenvironment: AzureML-sklearn-1.5@latest\n", ("azure-ai-ml", "environment", "azureml:")),
    ],
)
def test_bad_job_specs(cli, tmp_path, body, needles):
    spec = write(tmp_path / "job.yml", body)
    assert_rejected(cli, ["job", "create", "--file", str(spec)], *needles)
    assert_nothing_recorded(cli)


def test_remote_input_works_once_overridden_with_a_local_copy(cli, tmp_path):
    write(tmp_path / "local.csv", "a,b\n")
    spec = write(
        tmp_path / "job.yml",
        "command: cat ${{inputs.data}}\nenvironment: azureml:AzureML-sklearn-1.5@latest\n"
        "inputs:\n  data: {type: uri_file, path: 'https://example.invalid/x.csv'}\n",
    )
    job = cli.json("job", "create", "--file", str(spec), "--set", "inputs.data.path=./local.csv", "--stream")
    assert job["status"] == "Completed"


def test_missing_file_and_duplicate_job_name(cli, tmp_path):
    assert_rejected(cli, ["job", "create", "--file", str(tmp_path / "nope.yml")], "not found")
    spec = write(tmp_path / "job.yml", GOOD)
    first = cli.json("job", "create", "--file", str(spec), "--name", "dup-1", "--stream")
    assert first["status"] == "Completed"
    assert_rejected(cli, ["job", "create", "--file", str(spec), "--name", "dup-1"], "dup-1", "already exists")
    assert [j["name"] for j in cli.json("job", "list")] == ["dup-1"]
    assert sorted(p.name for p in (cli.home / "workspaces" / "default" / "jobs").iterdir()) == ["dup-1"]


def test_unknown_job_and_model(cli):
    assert_rejected(cli, ["job", "show", "--name", "ghost"], "ghost", "not found", "amlemu job list")
    assert_rejected(cli, ["model", "show", "--name", "ghost"], "ghost", "not found")


def test_bad_model_paths(cli, tmp_path):
    assert_rejected(cli, ["model", "create", "--name", "m", "--path", str(tmp_path / "nope.onnx")], "does not exist")
    assert_rejected(
        cli,
        ["model", "create", "--name", "m", "--path", "azureml://jobs/ghost/outputs/artifacts/paths/outputs/"],
        "ghost",
        "not found",
    )
    assert cli.json("model", "list") == []
    models = cli.home / "workspaces" / "default" / "models"
    assert not models.exists() or all(not list(p.iterdir()) for p in models.iterdir())


def test_not_emulated_verbs_say_so(cli):
    assert_rejected(cli, ["compute", "create", "--name", "vm", "--type", "virtualmachine"], "not emulated yet")
