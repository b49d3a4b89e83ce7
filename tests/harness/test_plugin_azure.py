"""The plugin with ``--aml-backend azure``: the real ``MLClient`` and ``DefaultAzureCredential``, here against a real
``amlemu serve`` (the ``front_door`` fixture), configured only by ``amlemu env``'s variables and a ``config.json``."""

from __future__ import annotations

import json

import pytest

from emulator.compute import service as computes
from emulator.endpoints import records
from emulator.store import WorkspaceStore
from emulator.testing.names import RunNames
from tests.harness import project

pytest_plugins = ["pytester"]

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"

AZURE_SUITE = """
from harness_record import record

def test_on_azure(aml_client, aml_run_job, aml_deploy, aml_compute):
    cluster = aml_compute(name="cpu", max_instances=1)
    assert cluster.name != "cpu" and cluster.name.endswith("-cpu")  # the run's prefix
    job = aml_run_job("job-file-input-only.yml", set={"display_name": "on-azure"}, compute=cluster.name,
                      download=False)  # the front door does not emulate jobs.download (POST .../rundata) yet
    assert job.display_name == "on-azure" and job.outputs_dir is None
    assert job.params["C"] == "0.25" and job.metrics["accuracy"] > 0.8
    ep = aml_deploy(model="model", endpoint_name="iris")
    assert ep.invoke({"data": [[5.1, 3.5, 1.4, 0.2]]}) == (200, [0])
    record("azure", workspace=aml_client.workspace_name, endpoint=ep.name, cluster=cluster.name)

def test_fails_on_azure(aml_deploy):
    ep = aml_deploy(model="model", endpoint_name="iris")
    record("azure-failed", endpoint=ep.name)
    assert False, "fails on purpose: the endpoint is deleted all the same"

def test_terminated_on_azure(aml_deploy):
    import os, signal
    ep = aml_deploy(model="model", endpoint_name="iris")
    record("azure-terminated", endpoint=ep.name)
    os.kill(os.getpid(), signal.SIGTERM)  # a cancelled CI job: teardown still deletes what costs money
"""


def test_the_same_fixtures_on_the_azure_backend_against_amlemu_serve(pytester, monkeypatch, iris_model, front_door):
    record_file = project.make(pytester, monkeypatch, iris_model)
    for key, value in front_door.variables.items():  # what `eval "$(amlemu env)"` sets, and nothing else
        monkeypatch.setenv(key, value)
    workspace = f"ws-{RunNames().prefix}"
    (pytester.path / "config.json").write_text(
        json.dumps({"subscription_id": SUBSCRIPTION, "resource_group": "harness-rg", "workspace_name": workspace})
    )
    # literal inputs (inputs.C) fail in the front door's PUT job today (ValidationException "<class 'str'> does
    # not have path"): this job passes C on its command line and has the file input only
    job = (pytester.path / "job.yml").read_text()
    job = job.replace("--C ${{inputs.C}} --max_iter ${{inputs.max_iter}}", "--C 0.25")
    job = job.replace("  C: 0.5\n  max_iter: 200\n", "")
    (pytester.path / "job-file-input-only.yml").write_text(job)
    pytester.makepyfile(test_suite=AZURE_SUITE)
    result, _ = project.run(pytester, "--aml-backend", "azure", "--aml-workspace-config", "config.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(passed=1, failed=1)
    created = json.loads(record_file.read_text())
    assert created["azure"]["workspace"] == workspace
    endpoints = {created[test]["endpoint"] for test in ("azure", "azure-failed", "azure-terminated")}
    assert len(endpoints) == 3 and len({name.split("-")[0][:5] for name in endpoints}) == 1  # the run's prefix
    # teardown deleted both endpoints and the cluster, through the SDK: nothing of them is left in the workspace
    store = WorkspaceStore(front_door.home / "workspaces" / workspace, workspace)
    assert records.list_endpoints(store) == []
    assert [c["name"] for c in computes.list_computes(store)] == []
    project.nothing_runs_under(front_door.home / "workspaces" / workspace)
