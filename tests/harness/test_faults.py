"""``aml_faults``, run as a user runs it: pytest (``pytester``) on a small project whose tests inject each fault and
check what their client sees — the status codes and bodies at the scoring URI, the SDK's exception for a compute
over quota, a job's status and error, a crashed replica restarted and serving, a lost node's job — and, after the
run, that no fault outlived its test (also the one whose test failed) and that nothing runs any more."""

from __future__ import annotations

import json
from pathlib import Path

from emulator.store import WorkspaceStore
from emulator.store import faults as store_faults
from tests.harness import project

pytest_plugins = ["pytester"]

FAULTS_SUITE = """
import argparse, json, urllib.error, urllib.request
import pytest
from azure.ai.ml import command, load_job
from azure.ai.ml.entities import AmlCompute, OnlineRequestSettings
from azure.ai.ml.exceptions import JobException
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from harness_record import record

ROW = {"data": [[5.1, 3.5, 1.4, 0.2]]}

def call(ep, deployment=None):
    '''POST to the scoring URI as any HTTP client does: (status, headers, body).'''
    headers = {"Authorization": f"Bearer {ep.key}", "Content-Type": "application/json"}
    if deployment:
        headers["azureml-model-deployment"] = deployment
    request = urllib.request.Request(ep.scoring_uri, data=json.dumps(ROW).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())

def test_endpoint_answers_429_503_and_timeout_for_n_requests(aml_client, aml_deploy, aml_faults):
    ep = aml_deploy(model="model", endpoint_name="flaky",
                    request_settings=OnlineRequestSettings(request_timeout_ms=1000))
    aml_faults.endpoint(ep, 429, count=2)
    first, second, third = call(ep), call(ep), call(ep)
    assert (first[0], second[0], third[0]) == (429, 429, 200), (first, second, third)
    error = first[2]["error"]
    assert error["code"] == "TooManyRequests" and "Too many pending requests" in error["message"], error
    assert first[1]["Content-Type"] == "application/json" and "Retry-After" not in first[1]
    assert third[2] == [0]

    aml_faults.endpoint(ep.name, 503, deployment="green")  # another deployment's fault: blue serves
    assert call(ep)[0] == 200
    aml_faults.endpoint(ep.name, 503, deployment="blue")
    status, headers, body = call(ep)
    assert status == 503 and body["error"]["code"] == "ServiceUnavailable" and "Retry-After" not in headers
    assert ep.invoke(ROW) == (200, [0])

    aml_faults.endpoint(ep, "timeout")  # 408 once request_timeout_ms has passed, as Azure answers
    status, _, body = call(ep)
    assert status == 408 and "request_timeout_ms (1000 ms)" in body["error"]["message"], body
    assert ep.invoke(ROW) == (200, [0])

    aml_faults.endpoint(ep, 429, count=1000)
    assert ep.invoke(ROW)[0] == 429
    aml_faults.clear()  # cleared: the next request is served at once
    assert ep.invoke(ROW) == (200, [0])
    with pytest.raises(AssertionError, match="status 404 is not one Azure answers"):
        aml_faults.endpoint(ep, 404)

def test_a_crashed_replica_is_restarted_and_serves(aml_client, aml_deploy, aml_faults):
    from emulator.endpoints import service
    from emulator.runtime.proctree import is_alive

    ep = aml_deploy(model="model", endpoint_name="crashy")
    crashed = aml_faults.crash_replica(ep)
    assert ep.invoke(ROW) == (200, [0])  # waits for the host to restart the replica, then served
    assert not is_alive(crashed.pid)
    replica = service.status(aml_client.store, ep.name)["deployments"]["blue"]["replicas"][0]
    assert replica["name"] == crashed.name and replica["pid"] != crashed.pid and replica["restarts"] == 1, replica

def test_a_job_fails_at_start_with_the_azure_error(aml_client, aml_faults):
    message = "AzureMLCompute job failed. JobConfigurationMaxSizeExceeded: injected on purpose"
    aml_faults.job_start("UserError", message)
    job = aml_client.jobs.create_or_update(load_job("job.yml"))
    failed = aml_client.jobs.wait(job.name, timeout=300)
    assert failed.status == "Failed" and failed.properties["amlemu.error"] == message
    assert aml_client.verbs.job_show(argparse.Namespace(name=job.name))["error"]["code"] == "UserError"
    with pytest.raises(JobException, match="JobConfigurationMaxSizeExceeded"):  # as azure-ai-ml's jobs.stream
        aml_client.jobs.stream(job.name)
    aml_faults.job_start("ServiceError", "Something went wrong on Azure's side.")
    second = aml_client.jobs.wait(aml_client.jobs.create_or_update(load_job("job.yml")).name, timeout=300)
    assert aml_client.verbs.job_show(argparse.Namespace(name=second.name))["error"] == {
        "code": "ServiceError", "message": "Something went wrong on Azure's side.", "exit_code": None}
    third = aml_client.jobs.wait(aml_client.jobs.create_or_update(load_job("job.yml")).name, timeout=300)
    assert third.status == "Completed"  # count=1: the fault was used up

def test_compute_creation_over_quota(aml_client, aml_compute, aml_faults):
    aml_faults.compute_quota("big", vcpu_quota=6)
    cluster = AmlCompute(name="big", size="Standard_DS4_v2", min_instances=1, max_instances=2)
    with pytest.raises(HttpResponseError) as info:
        aml_client.compute.begin_create_or_update(cluster).result()
    assert info.value.status_code == 400 and info.value.error.code == "ClusterMinNodesExceedCoreQuota"
    assert ("The specified subscription has a Standard DSv2 family vCPU quota of 6 and cannot accomodate for at "
            "least 1 requested managed compute nodes which maps to 8 vCPUs") in str(info.value)
    with pytest.raises(ResourceNotFoundError):
        aml_client.compute.get("big")  # nothing was created
    assert aml_compute("other").name == "other"  # the fault names "big" only
    assert aml_compute("big", size="Standard_DS4_v2").name == "big"  # count=1: used up

def test_a_node_lost_mid_job(aml_client, aml_compute, aml_faults):
    cluster = aml_compute("lossy", max_instances=1)
    aml_faults.node_lost(cluster, after_seconds=1)
    job = aml_client.jobs.create_or_update(command(
        command="echo started && sleep 300", environment="azureml:AzureML-sklearn-1.5@latest", compute="lossy"))
    failed = aml_client.jobs.wait(job.name, timeout=300)
    assert failed.status == "Failed" and "was lost" in failed.properties["amlemu.error"], failed.properties
    assert aml_client.compute.list_nodes("lossy") == []  # the lost node left the pool

def test_faults_are_cleared_even_when_the_test_fails(aml_client, aml_faults):
    aml_faults.job_start("UserError", "never used", count=1000)
    aml_faults.compute_quota(count=1000)
    record("failing", home=str(aml_client.store.root.parent.parent), workspace=aml_client.workspace_name,
           active=len(aml_faults.active()))
    assert False, "fails on purpose with faults set"

def test_only_on_the_local_backend(aml_faults):
    pass
"""


def test_each_fault_as_a_client_sees_it_and_none_outlives_its_test(pytester, monkeypatch, iris_model):
    record_file = project.make(pytester, monkeypatch, iris_model)
    pytester.makepyfile(test_suite=FAULTS_SUITE)
    result, basetemp = project.run(pytester, "-rA")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_suite.py::test_faults_are_cleared_even_when_the_test_fails*"])
    result.stdout.fnmatch_lines(["*AssertionError: fails on purpose with faults set"])
    failing = json.loads(record_file.read_text())["failing"]
    assert failing["active"] == 2
    store = WorkspaceStore(Path(failing["home"]) / "workspaces" / failing["workspace"], failing["workspace"])
    assert store.query("SELECT COUNT(*) FROM faults")[0][0] == 0  # the table is there, its rows are gone
    assert store_faults.active(store) == []
    project.nothing_runs_under(basetemp)


def test_faults_are_refused_on_azure_with_the_fix(pytester, monkeypatch):
    monkeypatch.delenv("AMLEMU_BACKEND", raising=False)
    pytester.makepyfile("def test_injects(aml_faults):\n    aml_faults.job_start('UserError', 'x')\n")
    result = pytester.runpytest("--aml-backend", "azure", "--aml-workspace-config", "no-such-config.json")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*aml_faults (azure backend): faults are injected into amlemu's local emulator only*aml_local_only*"]
    )
    fixtures = pytester.runpytest("--fixtures", "-v").stdout.str()
    assert "aml_faults [" in fixtures or "aml_faults --" in fixtures
    assert "ClusterMinNodesExceedCoreQuota" in fixtures
