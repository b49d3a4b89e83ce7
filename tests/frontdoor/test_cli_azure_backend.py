"""``amlemu`` itself with ``AMLEMU_BACKEND=azure``, pointed at ``amlemu serve``: the CLI drives the real
``MLClient`` and prints jobs as ``az ml job show`` does (the job, not the pipeline node the SDK reads it back
as; enums by value)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"


def _amlemu(workspace: str, *args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "AMLEMU_BACKEND": "azure"}
    scope = ["--subscription", SUBSCRIPTION, "-g", "my-rg", "-w", workspace]
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli.main", *args, *scope],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_job_show_and_list_print_the_job_with_its_name_status_and_plain_enums(front_env, workspace_name, tmp_path):
    (tmp_path / "job.yml").write_text(
        "command: echo hello from the azure backend\n"
        "environment: azureml:AzureML-sklearn-1.5@latest\n"
        "experiment_name: cli-azure\n"
    )
    created = _amlemu(workspace_name, "job", "create", "-f", "job.yml", "--query", "name", "-o", "tsv", cwd=tmp_path)
    assert created.returncode == 0, created.stderr[-2000:]
    name = created.stdout.strip()
    assert name
    streamed = _amlemu(workspace_name, "job", "stream", "-n", name, cwd=tmp_path)
    assert streamed.returncode == 0 and "hello from the azure backend" in streamed.stdout, streamed.stderr[-2000:]
    shown = _amlemu(workspace_name, "job", "show", "-n", name, "-o", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    job = json.loads(shown.stdout)
    assert (job["name"], job["status"], job["experiment_name"], job["type"]) == (
        name,
        "Completed",
        "cli-azure",
        "command",
    )
    assert job["creation_context"]["created_by_type"] == "User"
    assert "component" not in job  # the job, not the pipeline node azure-ai-ml reads it back as
    listed = _amlemu(workspace_name, "job", "list", "--query", "[].[name, status]", "-o", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert json.loads(listed.stdout) == [[name, "Completed"]]


def test_component_create_show_and_list_register_through_the_sdk(front_env, workspace_name, tmp_path):
    """``amlemu component`` on the Azure backend: the real ``MLClient`` uploads the code folder and registers the
    version through the front door; ``show`` and ``list`` read it back as ``az ml component`` prints it."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.py").write_text("print('hello')\n")
    (tmp_path / "component.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json\n"
        "name: say_hello\n"
        "version: '1'\n"
        "type: command\n"
        "code: ./src\n"
        "command: python hello.py --times ${{inputs.times}}\n"
        "environment: azureml:AzureML-sklearn-1.5@latest\n"
        "inputs:\n"
        "  times: {type: integer, default: 2}\n"
    )
    created = _amlemu(workspace_name, "component", "create", "-f", "component.yml", "-o", "json", cwd=tmp_path)
    assert created.returncode == 0, created.stderr[-2000:]
    component = json.loads(created.stdout)
    assert (component["name"], component["version"], component["type"]) == ("say_hello", "1", "command")
    assert component["inputs"]["times"]["default"] in (2, "2")
    assert component["code"].startswith(f"azureml:/subscriptions/{SUBSCRIPTION}/") and "/codes/" in component["code"]
    shown = _amlemu(workspace_name, "component", "show", "-n", "say_hello", "-v", "1", "-o", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert json.loads(shown.stdout)["command"] == "python hello.py --times ${{inputs.times}}"
    listed = _amlemu(workspace_name, "component", "list", "--query", "[].name", "-o", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert json.loads(listed.stdout) == ["say_hello"]
    missing = _amlemu(workspace_name, "component", "show", "-n", "say_hello", "-v", "9", cwd=tmp_path)
    assert missing.returncode != 0 and "ResourceNotFound" in missing.stderr, missing.stderr[-2000:]
    assert "Component 'say_hello' version '9' not found" in missing.stderr
