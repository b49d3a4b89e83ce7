"""Kubernetes online endpoints through the azure-ai-ml surface: an attached KubernetesCompute hosting a
KubernetesOnlineEndpoint whose replicas autoscale on utilization and are restarted by their liveness probe."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time

import pytest
import requests
from azure.ai.ml.entities import (
    CodeConfiguration,
    KubernetesCompute,
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    OnlineRequestSettings,
    ProbeSettings,
    TargetUtilizationScaleSettings,
)
from azure.core.exceptions import ResourceNotFoundError

from emulator.endpoints import service
from emulator.runtime.proctree import descendants, is_alive, start_time
from emulator.testing.load import run_load
from tests.conftest import SAMPLES, wait_for

IRIS = SAMPLES / "iris"
ROWS = {"data": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}
ENVIRONMENT = "azureml:AzureML-sklearn-1.5@latest"


@pytest.fixture
def cluster(ml_client):
    compute = ml_client.compute.begin_create_or_update(
        KubernetesCompute(name="k8s-cluster", namespace="azureml")
    ).result()
    assert compute.type == "kubernetes" and compute.namespace == "azureml"
    return compute


@pytest.fixture
def model(ml_client, iris_model):
    return ml_client.models.create_or_update(Model(name="iris", path=str(iris_model), type="custom_model"))


@pytest.fixture
def slow_code(tmp_path):
    """The iris scoring script, 5 ms slower per request (so a few connections keep a replica busy)."""
    code = tmp_path / "slow-score"
    code.mkdir()
    shutil.copy(IRIS / "score" / "score.py", code / "iris_score.py")
    (code / "score.py").write_text(
        "import time\n\nimport iris_score\n\n\ndef init():\n    iris_score.init()\n\n\n"
        "def run(raw_data):\n    time.sleep(0.005)\n    return iris_score.run(raw_data)\n"
    )
    return code


def _deploy(ml_client, model, code, name="blue", endpoint="k8s-ep", min_instances=1, max_instances=3):
    deployment = KubernetesOnlineDeployment(
        name=name,
        endpoint_name=endpoint,
        model=model,
        environment=ENVIRONMENT,
        code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
        instance_count=min_instances,
        scale_settings=TargetUtilizationScaleSettings(
            min_instances=min_instances,
            max_instances=max_instances,
            polling_interval=1,
            target_utilization_percentage=30,
        ),
        request_settings=OnlineRequestSettings(max_concurrent_requests_per_instance=1),
        liveness_probe=ProbeSettings(initial_delay=1, period=1, timeout=1, failure_threshold=2),
    )
    return ml_client.online_deployments.begin_create_or_update(deployment).result()


@pytest.fixture
def k8s_endpoint(ml_client, cluster):
    endpoint = KubernetesOnlineEndpoint(name="k8s-ep", compute="azureml:k8s-cluster", auth_mode="key")
    created = ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    assert isinstance(created, KubernetesOnlineEndpoint) and created.compute == "azureml:k8s-cluster"
    return endpoint


def _route_all(ml_client, deployment="blue", endpoint="k8s-ep"):
    ml_client.online_endpoints.begin_create_or_update(
        KubernetesOnlineEndpoint(name=endpoint, compute="azureml:k8s-cluster", traffic={deployment: 100})
    ).result()
    served = ml_client.online_endpoints.get(endpoint)
    key = ml_client.online_endpoints.get_keys(endpoint).primary_key
    return served.scoring_uri, {"Authorization": f"Bearer {key}"}


def _replicas(store, deployment="blue", endpoint="k8s-ep") -> list[dict]:
    return service.status(store, endpoint)["deployments"][deployment]["replicas"]


def test_kubernetes_deployment_serves_and_autoscales(ml_client, k8s_endpoint, model, slow_code, store):
    deployment = _deploy(ml_client, model, slow_code)
    assert isinstance(deployment, KubernetesOnlineDeployment) and deployment.provisioning_state == "Succeeded"
    assert deployment.scale_settings.type == "target_utilization" and deployment.scale_settings.max_instances == 3
    uri, auth = _route_all(ml_client)
    endpoint = ml_client.online_endpoints.get("k8s-ep")
    assert isinstance(endpoint, KubernetesOnlineEndpoint) and endpoint.traffic == {"blue": 100}
    answer = requests.post(uri, json=ROWS, headers=auth, timeout=10)
    assert answer.status_code == 200 and answer.json() == [0, 2]
    assert len(_replicas(store)) == 1

    results, counts = {}, []
    loader = threading.Thread(
        target=lambda: results.setdefault(
            "r",
            run_load(
                uri,
                connections=8,
                duration=6,
                headers={**auth, "Content-Type": "application/json"},
                body=json.dumps(ROWS).encode(),
            ),
        )
    )
    loader.start()
    while loader.is_alive():
        counts.append(len(_replicas(store)))
        time.sleep(0.2)
    loader.join()
    result = results["r"]
    assert result.total > 100 and result.errors == 0, result.summary()  # scaling drops no request
    assert max(counts) > 1, f"no scale-out under load: replica counts {counts}"
    assert max(counts) <= 3, f"scaled past max_instances: {counts}"
    peak = max(counts)
    # with the load gone, utilization falls below half the target and the deployment scales in to min_instances
    wait_for(lambda: len(_replicas(store)) == 1, "scale-in to 1 replica")
    events = ml_client.online_deployments.get_logs(
        name="blue", endpoint_name="k8s-ep", lines=200, container_type="storage-initializer"
    )
    assert f"scaling out to {peak}" in events and "scaling in to 1" in events
    assert requests.post(uri, json=ROWS, headers=auth, timeout=10).status_code == 200


def test_unresponsive_replica_is_restarted_by_its_liveness_probe(ml_client, k8s_endpoint, model, slow_code, store):
    _deploy(ml_client, model, slow_code, min_instances=2, max_instances=2)
    uri, auth = _route_all(ml_client)
    before = _replicas(store)
    assert len(before) == 2 and all(r["ready"] for r in before)
    frozen = before[0]
    # the replica's whole process tree (its server and the worker that runs the scoring script) is stopped: alive,
    # but it answers nothing, so only the liveness probe can tell (a direct request would need the host's secret)
    frozen_tree = [(pid, start_time(pid)) for pid in [frozen["pid"], *descendants(frozen["pid"])]]
    for pid, _ in frozen_tree:
        os.kill(pid, signal.SIGSTOP)
    try:

        def restarted():
            now = _replicas(store)
            fresh = [r for r in now if r["name"] == frozen["name"]]
            return now if fresh and fresh[0]["restarts"] == 1 and fresh[0]["ready"] else None

        now = wait_for(restarted, "the frozen replica's restart")
    finally:
        for pid, started in frozen_tree:
            if is_alive(pid, started):  # never leave a stopped process behind
                os.kill(pid, signal.SIGCONT)
    fresh = next(r for r in now if r["name"] == frozen["name"])
    assert fresh["pid"] != frozen["pid"] and not is_alive(frozen["pid"])
    wait_for(
        lambda: not any(is_alive(pid, started) for pid, started in frozen_tree),
        "the frozen processes to end",
        timeout=10,
    )
    other = next(r for r in now if r["name"] != frozen["name"])
    assert other["pid"] == before[1]["pid"] and other["restarts"] == 0

    def six_served():
        # on a loaded machine the restarted replica's scoring worker may still be warming up when its server
        # reports ready: what must hold is that the deployment serves again, not how fast
        answers = [requests.post(uri, json=ROWS, headers=auth, timeout=10) for _ in range(6)]
        return [r.status_code for r in answers] == [200] * 6

    wait_for(six_served, "six requests in a row answered 200 after the restart", timeout=60, poll=0.5)
    events = ml_client.online_deployments.get_logs(
        name="blue", endpoint_name="k8s-ep", lines=100, container_type="storage-initializer"
    )
    assert f"replica {frozen['name']} failed 2 liveness probes; restarting it" in events


def test_killed_replica_is_restarted(ml_client, k8s_endpoint, model, slow_code, store):
    _deploy(ml_client, model, slow_code, min_instances=1, max_instances=1)
    uri, auth = _route_all(ml_client)
    [before] = _replicas(store)
    os.kill(before["pid"], signal.SIGKILL)
    [after] = wait_for(
        lambda: [r for r in _replicas(store) if r["restarts"] == 1 and r["ready"]], "the killed replica's restart"
    )
    assert after["pid"] != before["pid"] and after["name"] == before["name"]
    answer = requests.post(uri, json=ROWS, headers=auth, timeout=10)
    assert answer.status_code == 200 and answer.json() == [0, 2]


def test_compute_and_kind_rules(ml_client, cluster, model, slow_code):
    with pytest.raises(ResourceNotFoundError, match="compute attach --type Kubernetes --name no-such-cluster"):
        ml_client.online_endpoints.begin_create_or_update(
            KubernetesOnlineEndpoint(name="lost-ep", compute="azureml:no-such-cluster")
        ).result()
    with pytest.raises(ResourceNotFoundError):
        ml_client.online_endpoints.get("lost-ep")  # nothing recorded
    with pytest.raises(TypeError):  # the SDK itself: a managed endpoint has no compute
        ManagedOnlineEndpoint(name="managed-ep", compute="azureml:k8s-cluster")
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="managed-ep")).result()
    with pytest.raises(Exception, match="managed online endpoint; it cannot move to compute 'k8s-cluster'"):
        ml_client.online_endpoints.begin_create_or_update(
            KubernetesOnlineEndpoint(name="managed-ep", compute="azureml:k8s-cluster")
        ).result()
    assert isinstance(ml_client.online_endpoints.get("managed-ep"), ManagedOnlineEndpoint)
    ml_client.online_endpoints.begin_create_or_update(
        KubernetesOnlineEndpoint(name="k8s-ep", compute="azureml:k8s-cluster")
    ).result()
    with pytest.raises(Exception, match="KubernetesOnlineDeployment"):
        ml_client.online_deployments.begin_create_or_update(
            ManagedOnlineDeployment(
                name="blue",
                endpoint_name="k8s-ep",
                model=model,
                instance_count=1,
                environment=ENVIRONMENT,
                code_configuration=CodeConfiguration(code=str(slow_code), scoring_script="score.py"),
            )
        ).result()
    with pytest.raises(Exception, match=r"min_instances \(3\) is above max_instances \(2\)"):
        _deploy(ml_client, model, slow_code, min_instances=3, max_instances=2)
    assert ml_client.online_deployments.list(endpoint_name="k8s-ep") == []
    with pytest.raises(Exception, match="hosts online endpoint.*k8s-ep.*delete them first"):
        ml_client.compute.begin_delete("k8s-cluster")
    assert ml_client.compute.get("k8s-cluster").namespace == "azureml"
    ml_client.online_endpoints.begin_delete(name="k8s-ep").result()
    ml_client.compute.begin_delete("k8s-cluster")
    assert ml_client.compute.list() == []


def test_compute_attach_show_and_list_through_the_cli(cli, iris_model):
    attached = cli.json("compute", "attach", "--type", "Kubernetes", "--name", "k8s", "--namespace", "azureml")
    assert attached["name"] == "k8s" and attached["type"] == "kubernetes" and attached["namespace"] == "azureml"
    assert attached["provisioning_state"] == "Succeeded" and attached["id"].endswith("/computes/k8s")
    assert cli.json("compute", "show", "--name", "k8s") == attached
    from_file = cli.json("compute", "attach", "--file", str(IRIS / "deploy" / "k8s-compute.yml"))
    assert from_file["name"] == "k8s-cluster" and from_file["namespace"] == "azureml"
    assert sorted(c["name"] for c in cli.json("compute", "list")) == ["k8s", "k8s-cluster"]
    bad = cli.run("compute", "show", "--name", "nope", check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("ERROR:") and "amlemu compute list" in bad.stderr
    # the sample Kubernetes endpoint and deployment YAML files, unmodified
    cli.json("model", "create", "--name", "iris", "--path", str(iris_model))
    endpoint = cli.json("online-endpoint", "create", "--file", str(IRIS / "deploy" / "k8s-endpoint.yml"))
    assert endpoint["kind"] == "K8S" and endpoint["compute"] == "azureml:k8s-cluster"
    deployment = cli.json(
        "online-deployment", "create", "--file", str(IRIS / "deploy" / "k8s-deployment.yml"), "--all-traffic"
    )
    assert deployment["type"] == "kubernetes" and deployment["provisioning_state"] == "Succeeded"
    assert deployment["scale_settings"]["type"] == "target_utilization"
    assert cli.json(
        "online-endpoint", "invoke", "--name", "iris-k8s-ep", "--request-file", str(IRIS / "sample-request.json")
    ) == [0, 1, 2]
    refused = cli.run("compute", "detach", "--name", "k8s-cluster", "--yes", check=False)
    assert refused.returncode == 1 and "iris-k8s-ep" in refused.stderr
    cli.run("compute", "detach", "--name", "k8s", "--yes")
    assert [c["name"] for c in cli.json("compute", "list")] == ["k8s-cluster"]
