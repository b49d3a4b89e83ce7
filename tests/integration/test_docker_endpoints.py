"""Online deployments on the docker runtime: replicas in containers built offline from the environment plus the
scoring server's packages, non-root, published on 127.0.0.1 only, labelled, restarted and removed."""

from __future__ import annotations

import os
import signal
import time
import uuid

import docker
import pytest
import requests
from azure.ai.ml.entities import CodeConfiguration, Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

from emulator.endpoints import service
from tests.conftest import SAMPLES, stop_endpoint_hosts

pytestmark = pytest.mark.docker

IRIS = SAMPLES / "iris"
ROWS = {"data": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}


def containers(endpoint: str) -> list:
    return docker.from_env().containers.list(
        all=True, ignore_removed=True, filters={"label": f"com.amlemu.endpoint={endpoint}"}
    )


@pytest.fixture
def endpoint_name(ml_client, amlemu_home, monkeypatch):
    """A name no other run on this engine uses; the deployments made under it run in containers."""
    docker.from_env().ping()  # fails (never skips) without an engine
    monkeypatch.setenv("AMLEMU_RUNTIME", "docker")
    name = f"dock-{uuid.uuid4().hex[:8]}"
    yield name
    stop_endpoint_hosts(amlemu_home)
    for container in containers(name):  # only if a failed test left one: ours by the unique name
        container.remove(force=True)
    for network in docker.from_env().networks.list(names=[f"amlemu-default-{name}"]):
        network.remove()


@pytest.fixture
def model(ml_client, iris_model):
    return ml_client.models.create_or_update(Model(name="iris", path=str(iris_model), type="custom_model"))


def deploy(ml_client, model, endpoint: str, name: str = "blue", instance_count: int = 1):
    return ml_client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(
            name=name,
            endpoint_name=endpoint,
            model=model,
            instance_count=instance_count,
            environment="azureml:AzureML-sklearn-1.5@latest",
            code_configuration=CodeConfiguration(code=str(IRIS / "score"), scoring_script="score.py"),
        )
    ).result()


def serve(ml_client, model, endpoint: str, **endpoint_kwargs) -> tuple[str, dict[str, str]]:
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=endpoint, **endpoint_kwargs)).result()
    deployment = deploy(ml_client, model, endpoint)
    assert deployment.provisioning_state == "Succeeded"
    ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name=endpoint, traffic={"blue": 100}, **endpoint_kwargs)
    ).result()
    key = ml_client.online_endpoints.get_keys(endpoint).primary_key
    return ml_client.online_endpoints.get(endpoint).scoring_uri, {"Authorization": f"Bearer {key}"}


def test_deployment_runs_in_a_labelled_container_as_the_invoking_user(ml_client, model, endpoint_name, store):
    uri, auth = serve(ml_client, model, endpoint_name)
    assert service.get_deployment(store, endpoint_name, "blue")["runtime"] == "docker"
    answer = ml_client.online_endpoints.invoke(
        endpoint_name=endpoint_name, request_file=str(IRIS / "sample-request.json")
    )
    assert answer == "[0, 1, 2]"
    response = requests.post(uri, json=ROWS, headers=auth, timeout=10)
    assert response.status_code == 200 and response.json() == [0, 2]

    [container] = containers(endpoint_name)
    attrs = container.attrs
    assert attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    assert container.exec_run("id -u").output.decode().strip() == str(os.getuid())
    labels = container.labels
    assert labels["com.amlemu.kind"] == "deployment" and labels["com.amlemu.endpoint"] == endpoint_name
    assert labels["com.amlemu.deployment"] == "blue"
    # published nowhere: the gateway reaches it on the endpoint's own network
    assert not attrs["HostConfig"]["PortBindings"] and not container.ports
    assert list(attrs["NetworkSettings"]["Networks"]) == [f"amlemu-default-{endpoint_name}"]
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert not mounts["/var/azureml-app/azureml-models/iris/1"]["RW"]  # the model is read-only inside

    logs = ml_client.online_deployments.get_logs(name="blue", endpoint_name=endpoint_name, lines=50)
    assert "init" in logs.lower() and "azmlinfsrv" in logs and auth["Authorization"] not in logs

    # a second deployment from the now cached image: how long until it is ready
    started = time.monotonic()
    assert deploy(ml_client, model, endpoint_name, name="green").provisioning_state == "Succeeded"
    print(f"\ndocker deployment ready in {time.monotonic() - started:.1f} s (cached image)")
    assert len(containers(endpoint_name)) == 2
    pinned = requests.post(uri, json=ROWS, headers={**auth, "azureml-model-deployment": "green"}, timeout=10)
    assert pinned.status_code == 200 and pinned.headers["azureml-model-deployment"] == "green"

    ml_client.online_endpoints.begin_delete(name=endpoint_name).result()
    assert containers(endpoint_name) == []


def test_private_endpoint_publishes_nothing_and_refuses_outside_calls(ml_client, model, endpoint_name):
    uri, auth = serve(ml_client, model, endpoint_name, public_network_access="disabled")
    [container] = containers(endpoint_name)
    assert not container.attrs["HostConfig"]["PortBindings"] and not container.ports
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [f"amlemu-default-{endpoint_name}"]
    outside = requests.post(uri, json=ROWS, headers=auth, timeout=10)
    assert outside.status_code == 403 and "public_network_access" in outside.json()["error"]["message"]
    ml_client.online_endpoints.begin_delete(name=endpoint_name).result()
    assert containers(endpoint_name) == []
    assert docker.from_env().networks.list(names=[f"amlemu-default-{endpoint_name}"]) == []


def test_a_replica_gets_only_its_environment_no_privileges_and_no_way_out(
    ml_client, model, endpoint_name, store, monkeypatch
):
    monkeypatch.setenv("AMLEMU_TEST_SECRET_XYZ", "caller-shell-secret")  # the endpoint host inherits it
    uri, auth = serve(ml_client, model, endpoint_name)
    assert requests.post(uri, json=ROWS, headers=auth, timeout=10).json() == [0, 2]
    [container] = containers(endpoint_name)
    config = container.attrs["HostConfig"]
    assert config["CapDrop"] == ["ALL"] and config["SecurityOpt"] == ["no-new-privileges"]
    assert config["PidsLimit"] == 4096 and config["Memory"] == 4 * 2**30
    server_env = container.exec_run("cat /proc/1/environ").output.decode().split("\0")
    assert not [v for v in server_env if "AMLEMU_TEST_SECRET_XYZ" in v or "caller-shell-secret" in v]
    assert "AZUREML_MODEL_DIR=/var/azureml-app/azureml-models/iris/1" in server_env
    assert "AZUREML_DEPLOYMENT_NAME=blue" in server_env

    network_name = f"amlemu-default-{endpoint_name}"
    network = docker.from_env().networks.get(network_name)
    assert network.attrs["Internal"] and network.attrs["Labels"]["com.amlemu.kind"] == "endpoint-network"
    address = container.attrs["NetworkSettings"]["Networks"][network_name]["IPAddress"]
    port = service.status(store, endpoint_name)["deployments"]["blue"]["replicas"][0]["port"]
    # the host (where the gateway runs) reaches it; the replica may refuse a call that is not the gateway's
    assert requests.get(f"http://{address}:{port}/", timeout=10).status_code in (200, 403)
    connect = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); print('open')"
    out = container.exec_run(["python", "-c", connect, "1.1.1.1", "53"])
    assert out.exit_code != 0 and b"open" not in out.output, out.output  # no route out
    other = docker.from_env().containers.run(  # a container on the default bridge, as any other local container
        "amlemu/base:bookworm",
        ["python3", "-c", connect, address, str(port)],
        network="bridge",
        labels={"com.amlemu.endpoint": endpoint_name},
        detach=True,
    )
    try:
        assert other.wait(timeout=30)["StatusCode"] != 0, other.logs()
        assert b"open" not in other.logs()
    finally:
        other.remove(force=True)


def test_container_killed_from_outside_is_restarted(ml_client, model, endpoint_name, store):
    uri, auth = serve(ml_client, model, endpoint_name)
    [before] = containers(endpoint_name)
    before.kill()
    deadline = time.monotonic() + 60  # a hang guard only
    while time.monotonic() < deadline:
        replicas = service.status(store, endpoint_name)["deployments"]["blue"]["replicas"]
        if replicas and replicas[0]["restarts"] == 1 and replicas[0]["ready"]:  # not ready while it restarts
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the killed container was not replaced: {replicas}")
    [after] = containers(endpoint_name)
    assert after.id != before.id and after.status == "running"
    response = requests.post(uri, json=ROWS, headers=auth, timeout=10)
    assert response.status_code == 200 and response.json() == [0, 2]
    events = ml_client.online_deployments.get_logs(
        name="blue", endpoint_name=endpoint_name, lines=20, container_type="storage-initializer"
    )
    assert "exited with code 137; restarting it" in events


def test_containers_of_a_crashed_host_are_replaced_when_the_endpoint_comes_back(ml_client, model, endpoint_name, store):
    uri, auth = serve(ml_client, model, endpoint_name)
    [before] = containers(endpoint_name)
    host = service.host_state(store, endpoint_name)
    os.kill(host["pid"], signal.SIGKILL)  # a crash: the container outlives its host
    assert [c.id for c in containers(endpoint_name)] == [before.id]
    assert ml_client.online_endpoints.get(endpoint_name).scoring_uri == uri  # any call brings the host back
    deadline = time.monotonic() + 60  # a hang guard only
    while time.monotonic() < deadline:
        response = requests.post(uri, json=ROWS, headers=auth, timeout=10)
        if response.status_code == 200:
            break
        time.sleep(0.1)
    assert response.status_code == 200 and response.json() == [0, 2]
    [after] = containers(endpoint_name)
    assert after.id != before.id and after.labels["com.amlemu.host"].startswith(
        f"{service.host_state(store, endpoint_name)['pid']}:"
    )


def test_deleting_the_endpoint_while_a_replica_starts_leaves_no_container(ml_client, endpoint_name, store, tmp_path):
    code = tmp_path / "slow-init"
    code.mkdir()
    (code / "score.py").write_text(
        "import time\n\n\ndef init():\n    time.sleep(60)\n\n\ndef run(raw_data):\n    return raw_data\n"
    )
    service.create_or_update_endpoint(store, {"name": endpoint_name})
    service.create_or_update_deployment(
        store,
        {
            "name": "blue",
            "endpoint_name": endpoint_name,
            "environment": "azureml:AzureML-sklearn-1.5@latest",
            "code_configuration": {"code": str(code), "scoring_script": "score.py"},
        },
        tmp_path,
        wait=False,
    )
    deadline = time.monotonic() + 60  # a hang guard only
    while not containers(endpoint_name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert containers(endpoint_name), "the replica's container never started"
    assert service.get_deployment(store, endpoint_name, "blue")["provisioning_state"] == "Creating"
    ml_client.online_endpoints.begin_delete(name=endpoint_name).result()
    assert containers(endpoint_name) == []


def test_an_environment_with_its_own_inference_server_runs_it_in_the_container(
    ml_client, model, endpoint_name, store, tmp_path
):
    """azureml-inference-server-http in the conda file: the container runs azmlinfsrv at that version; the same
    script and model on an environment without it run amlemu's server; same answers, same refusals."""
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=endpoint_name)).result()
    for name, server in (("own", ["azureml-inference-server-http==1.4.0"]), ("amlemu", [])):
        conda = tmp_path / f"{name}.yml"
        pip = "".join(f"    - {req}\n" for req in [*server, "onnxruntime", "numpy"])
        conda.write_text(f"name: {name}\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n{pip}")
        deployment = ml_client.online_deployments.begin_create_or_update(
            ManagedOnlineDeployment(
                name=name,
                endpoint_name=endpoint_name,
                model=model,
                instance_count=1,
                environment=Environment(
                    conda_file=str(conda), image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
                ),
                code_configuration=CodeConfiguration(code=str(IRIS / "score"), scoring_script="score.py"),
            )
        ).result()
        assert deployment.provisioning_state == "Succeeded"
    uri = ml_client.online_endpoints.get(endpoint_name).scoring_uri
    key = ml_client.online_endpoints.get_keys(endpoint_name).primary_key
    found = {c.labels["com.amlemu.deployment"]: c for c in containers(endpoint_name)}  # the server probes' are gone
    assert sorted(found) == ["amlemu", "own"]
    network_name = f"amlemu-default-{endpoint_name}"
    for name, marker in (("own", b"azmlinfsrv"), ("amlemu", b"emulator.serving")):
        pick = {"azureml-model-deployment": name}
        scored = requests.post(uri, json=ROWS, headers={**pick, "Authorization": f"Bearer {key}"}, timeout=30)
        assert scored.status_code == 200 and scored.json() == [0, 2], (name, scored.text)
        assert requests.post(uri, json=ROWS, headers=pick, timeout=30).status_code == 401
        container = found[name]
        assert marker in container.exec_run("cat /proc/1/cmdline").output
        address = container.attrs["NetworkSettings"]["Networks"][network_name]["IPAddress"]
        port = service.status(store, endpoint_name)["deployments"][name]["replicas"][0]["port"]
        direct = requests.post(f"http://{address}:{port}/score", json=ROWS, timeout=10)  # the host, not the gateway
        assert direct.status_code == 403 and direct.json()["error"]["code"] == "Forbidden", (name, direct.text)
    logs = ml_client.online_deployments.get_logs(name="own", endpoint_name=endpoint_name, lines=300)
    assert "Azure ML Inferencing HTTP server v1.4.0" in logs, logs
    ml_client.online_endpoints.begin_delete(name=endpoint_name).result()
    assert containers(endpoint_name) == []
