"""Names that would become paths outside the state folder, and leftovers (issue #10 parts 3, 8).

Each case was reproduced on the CLI before the fix (a folder written outside ``AMLEMU_HOME`` or
outside ``--download-path``, a raw ``OSError [Errno 36]``, ``code: /`` copying the filesystem);
each must now be refused with a message naming the rule, and leave nothing behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli_bad_input import assert_rejected
from tests.e2e.test_cli_jobs import write

ENV = "environment: azureml:AzureML-sklearn-1.5@latest\n"


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


@pytest.fixture
def sandbox(cli, tmp_path):
    """A folder around the home (home = sandbox/amlemu-home): whatever escapes lands here."""
    model = write(tmp_path / "model-src" / "model.pkl", "weights")
    yield model
    escaped = [
        p.name
        for p in (*tmp_path.iterdir(), *tmp_path.parent.iterdir())
        if p.name.startswith(("escape", "abs-", "up", "ws", "x"))
    ]
    assert escaped == [], f"written outside AMLEMU_HOME: {escaped}"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--name", "../../../../escape-model"], "Model name '../../../../escape-model' is invalid"),
        (["--name", "../escape-model"], "Model name '../escape-model' is invalid"),
        (["--name", "ABSOLUTE"], "is invalid"),
        (["--name", "ok-model", "--version", "ABSOLUTE"], "Version"),
        (["--name", "ok-model", "--version", "../2"], "Version '../2' of model 'ok-model' is invalid"),
        (["--name", "x" * 300], "(300 characters)"),
        (["--name", "\uff0e\uff0e\uff0fescape-model"], "is invalid"),
        (["--name", "\uff0fescape-model"], "is invalid"),
    ],
)
def test_model_names_cannot_leave_the_home(cli, sandbox, tmp_path, args, needle):
    target = tmp_path / "abs-target"
    args = [str(target) if a == "ABSOLUTE" else a for a in args]
    err = assert_rejected(cli, ["model", "create", "--path", str(sandbox), *args], needle, "Azure ML takes")
    assert "Errno" not in err
    assert not target.exists()
    assert cli.json("model", "list") == []
    assert not (cli.home / "workspaces" / "default" / "models").exists()


def test_model_download_stays_in_the_download_path(cli, sandbox, tmp_path):
    dl = tmp_path / "dl" / "inner"
    assert_rejected(cli, ["model", "create", "--name", "../../x", "--path", str(sandbox)], "is invalid")
    assert_rejected(cli, ["model", "download", "--name", "../../x", "--download-path", str(dl)])
    assert files_under(tmp_path / "dl") == set()
    cli.json("model", "create", "--name", "good", "--path", str(sandbox))
    cli.run("model", "download", "--name", "good", "--download-path", str(dl))
    assert (dl / "good" / "model.pkl").read_text() == "weights"


def test_job_output_and_input_names_cannot_be_paths(cli, sandbox, tmp_path):
    escape = tmp_path / "escape-output"
    spec = write(tmp_path / "job.yml", f"command: echo hi\n{ENV}outputs:\n  {escape}: {{type: uri_folder}}\n")
    assert_rejected(cli, ["job", "create", "--file", str(spec)], f"Output name '{escape}' is invalid")
    spec = write(tmp_path / "job.yml", f"command: echo hi\n{ENV}outputs:\n  ../../up: {{type: uri_folder}}\n")
    assert_rejected(cli, ["job", "create", "--file", str(spec)], "Output name '../../up' is invalid")
    spec = write(tmp_path / "job.yml", f"command: echo hi\n{ENV}inputs:\n  ../in: 1\n")
    assert_rejected(cli, ["job", "create", "--file", str(spec)], "Input name '../in' is invalid")
    assert not escape.exists()
    assert cli.json("job", "list", "--all-results") == []
    assert files_under(cli.home / "workspaces" / "default" / "jobs") == set()


@pytest.mark.parametrize("name", ["../../escape-job", "/tmp/escape-job", "x" * 300, "\uff0e\uff0e"])
def test_job_names_cannot_be_paths(cli, sandbox, tmp_path, name):
    spec = write(tmp_path / "job.yml", f"command: echo hi\n{ENV}")
    err = assert_rejected(cli, ["job", "create", "--file", str(spec), "--name", name], "Job name", "is invalid")
    assert "Errno" not in err
    assert cli.json("job", "list", "--all-results") == []
    assert not Path("/tmp/escape-job").exists() or name != "/tmp/escape-job"


@pytest.mark.parametrize("workspace", ["../../../ws", "../escape-ws", "ABSOLUTE", "x" * 300, "w\uff0fs"])
def test_workspace_names_cannot_leave_the_home(cli, sandbox, tmp_path, monkeypatch, workspace):
    workspace = str(tmp_path / "abs-ws") if workspace == "ABSOLUTE" else workspace
    monkeypatch.setenv("AMLEMU_WORKSPACE", workspace)
    assert_rejected(cli, ["model", "list"], "Workspace name", "is invalid", "3-33")
    monkeypatch.delenv("AMLEMU_WORKSPACE")
    assert_rejected(cli, ["model", "list", "-w", workspace], "Workspace name")
    assert not (tmp_path / "abs-ws").exists()
    assert not (cli.home / "workspaces").exists() or list((cli.home / "workspaces").iterdir()) == []


def test_endpoint_and_compute_names_are_checked(cli, sandbox, tmp_path):
    ep = write(tmp_path / "ep.yml", "name: ../../escape-ep\nauth_mode: key\n")
    assert_rejected(cli, ["online-endpoint", "create", "--file", str(ep)], "Endpoint name '../../escape-ep' is invalid")
    compute = write(tmp_path / "c.yml", "name: ../escape-c\ntype: amlcompute\nsize: Standard_DS3_v2\n")
    assert_rejected(cli, ["compute", "create", "--file", str(compute)], "Compute cluster name '../escape-c'")
    env = write(tmp_path / "env.yml", "name: ../escape-env\nimage: python:3.11-slim\n")
    assert_rejected(cli, ["environment", "create", "--file", str(env)], "Environment name '../escape-env'")


def test_code_at_the_filesystem_root_is_refused(cli, tmp_path):
    spec = write(tmp_path / "job.yml", f"code: /\ncommand: echo hi\n{ENV}")
    assert_rejected(cli, ["job", "create", "--file", str(spec)], "filesystem root", "Point code:")
    assert cli.json("job", "list", "--all-results") == []
    assert files_under(cli.home / "workspaces" / "default" / "jobs") == set()


def test_code_over_the_snapshot_limit_is_refused_and_amlignore_helps(cli, tmp_path, monkeypatch):
    for i in range(5):
        write(tmp_path / "src" / "data" / f"part{i}.csv", "1\n")
    write(tmp_path / "src" / "run.py", "print('ran')\n")
    spec = write(tmp_path / "job.yml", f"code: ./src\ncommand: python run.py\n{ENV}")
    monkeypatch.setenv("AMLEMU_SNAPSHOT_MAX_FILES", "3")
    assert_rejected(
        cli,
        ["job", "create", "--file", str(spec)],
        "snapshot limit of 3 files",
        ".amlignore",
        "AMLEMU_SNAPSHOT_MAX_FILES",
    )
    assert cli.json("job", "list", "--all-results") == []
    assert files_under(cli.home / "workspaces" / "default" / "jobs") == set()
    write(tmp_path / "src" / ".amlignore", "data/\n")
    job = cli.json("job", "create", "--file", str(spec), "--stream")
    assert job["status"] == "Completed"
    snap = cli.home / "workspaces" / "default" / "jobs" / job["name"] / "snapshot"
    assert not (snap / "data").exists() and (snap / "run.py").exists()


def test_prune_removes_staging_left_by_a_killed_process_in_this_home_only(cli, sandbox, tmp_path, monkeypatch):
    cli.json("model", "create", "--name", "iris", "--path", str(sandbox))
    models = cli.home / "workspaces" / "default" / "models" / "iris"
    other_home = tmp_path / "other-home"
    other_models = other_home / "workspaces" / "default" / "models" / "iris"
    # a process killed (-9) while copying a model in, as `model create` would be, in each home
    script = (
        "import os, signal, sys\nfrom pathlib import Path\nfrom emulator.store import staging\n"
        "for parent in sys.argv[1:]:\n"
        "    (staging.make(Path(parent)) / 'model.pkl').write_text('half')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(models), str(other_models)], cwd=Path.cwd())
    assert proc.returncode == -signal.SIGKILL
    left = [p for p in models.iterdir() if p.name.startswith(".staging-")]
    assert len(left) == 1
    from emulator.store import staging

    live = staging.make(models)  # this (live) process is still filling it
    from emulator.runtime.prune import prune_staging

    removed = prune_staging()
    assert removed == [str(left[0].relative_to(cli.home))]
    assert not left[0].exists() and live.exists()
    assert [p.name for p in other_models.iterdir()][0].startswith(".staging-")  # another home: untouched
    assert cli.json("model", "show", "--name", "iris")["version"] == "1"
    help_text = cli.run("system", "--help").stdout
    assert "staging" in help_text
    os.rmdir(live)
