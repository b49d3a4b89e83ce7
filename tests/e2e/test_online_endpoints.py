"""Online endpoints through the azure-ai-ml surface, on the process runtime: real hosts, gateways,
scoring servers and HTTP on loopback."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import requests
from azure.ai.ml import command
from azure.ai.ml.entities import (
    CodeConfiguration,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    OnlineRequestSettings,
)
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from emulator.endpoints import keys, service
from emulator.store import secrets
from emulator.testing.load import run_load
from tests.conftest import SAMPLES

IRIS = SAMPLES / "iris"
ROWS = {"data": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}


def _endpoint(ml_client, name="iris-ep", **kwargs):
    endpoint = ManagedOnlineEndpoint(name=name, auth_mode=kwargs.pop("auth_mode", "key"), **kwargs)
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    return endpoint


def _deploy(ml_client, model, name="blue", endpoint="iris-ep", script: bool = True, **kwargs):
    extra = {}
    if script:
        extra = {
            "environment": "azureml:AzureML-sklearn-1.5@latest",
            "code_configuration": CodeConfiguration(code=str(IRIS / "score"), scoring_script="score.py"),
        }
    extra.update(kwargs)
    deployment = ManagedOnlineDeployment(
        name=name, endpoint_name=endpoint, model=model, instance_count=extra.pop("instance_count", 1), **extra
    )
    return ml_client.online_deployments.begin_create_or_update(deployment).result()


def _auth(ml_client, name="iris-ep") -> dict[str, str]:
    return {"Authorization": f"Bearer {ml_client.online_endpoints.get_keys(name).primary_key}"}


@pytest.fixture
def model(ml_client, iris_model):
    return ml_client.models.create_or_update(Model(name="iris", path=str(iris_model), type="custom_model"))


@pytest.fixture
def served(ml_client, model):
    """iris-ep with deployment blue (score.py, 2 replicas) taking all traffic."""
    endpoint = _endpoint(ml_client)
    _deploy(ml_client, model, instance_count=2)
    endpoint.traffic = {"blue": 100}
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    return ml_client.online_endpoints.get("iris-ep")


def test_tutorial_flow(ml_client, served, tmp_path):
    assert served.scoring_uri.startswith("http://127.0.0.1:") and served.scoring_uri.endswith("/score")
    assert served.traffic == {"blue": 100} and served.provisioning_state == "Succeeded"
    answer = ml_client.online_endpoints.invoke(endpoint_name="iris-ep", request_file=str(IRIS / "sample-request.json"))
    assert json.loads(answer) == [0, 1, 2]
    # the scoring URI with the key, as curl or Postman would call it
    response = requests.post(served.scoring_uri, json=ROWS, headers=_auth(ml_client), timeout=10)
    assert response.status_code == 200 and response.json() == [0, 2]
    assert response.headers["azureml-model-deployment"] == "blue"
    assert response.headers["x-ms-request-id"] == response.headers["x-request-id"]
    tagged = requests.post(
        served.scoring_uri, json=ROWS, headers={**_auth(ml_client), "x-ms-client-request-id": "client-7"}, timeout=10
    )
    assert tagged.headers["x-ms-request-id"] == "client-7" != tagged.headers["x-request-id"]
    deployment = ml_client.online_deployments.get(name="blue", endpoint_name="iris-ep")
    assert deployment.instance_count == 2 and deployment.provisioning_state == "Succeeded"
    assert [d.name for d in ml_client.online_deployments.list(endpoint_name="iris-ep")] == ["blue"]
    logs = ml_client.online_deployments.get_logs(name="blue", endpoint_name="iris-ep", lines=50)
    assert "init" in logs.lower()
    assert len(logs.strip().splitlines()) <= 50
    assert [e.name for e in ml_client.online_endpoints.list()] == ["iris-ep"]
    swagger = requests.get(served.openapi_uri, headers=_auth(ml_client), timeout=10)
    assert swagger.status_code == 200 and "paths" in swagger.json()
    # local=True names the local endpoints (azure-ai-ml's own semantics): a workspace endpoint is not one of them
    from azure.ai.ml.exceptions import LocalEndpointNotFoundError

    with pytest.raises(LocalEndpointNotFoundError):
        ml_client.online_endpoints.get("iris-ep", local=True)


def test_built_in_onnx_scorer_needs_no_script(ml_client, model):
    _endpoint(ml_client, traffic=None)
    _deploy(ml_client, model, script=False)
    answer = ml_client.online_endpoints.invoke(
        endpoint_name="iris-ep", deployment_name="blue", request_file=str(IRIS / "sample-request.json")
    )
    assert json.loads(answer) == [0, 1, 2]


def test_keys_regenerate_and_old_key_refused_at_once(ml_client, served):
    uri = served.scoring_uri
    creds = ml_client.online_endpoints.get_keys("iris-ep")
    assert creds.primary_key != creds.secondary_key
    for key in (creds.primary_key, creds.secondary_key):
        assert requests.post(uri, json=ROWS, headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code == 200
    missing = requests.post(uri, json=ROWS, timeout=10)
    assert missing.status_code == 401 and "Authorization header missing" in missing.json()["error"]["message"]
    wrong = requests.post(uri, json=ROWS, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    ml_client.online_endpoints.begin_regenerate_keys(name="iris-ep", key_type="primary").result()
    fresh = ml_client.online_endpoints.get_keys("iris-ep")
    assert fresh.primary_key != creds.primary_key and fresh.secondary_key == creds.secondary_key
    old = requests.post(uri, json=ROWS, headers={"Authorization": f"Bearer {creds.primary_key}"}, timeout=10)
    assert old.status_code == 401 and "regenerated" in old.json()["error"]["message"]
    assert (
        requests.post(uri, json=ROWS, headers={"Authorization": f"Bearer {fresh.primary_key}"}, timeout=10).status_code
        == 200
    )


def test_aml_token_auth_and_expiry(ml_client, model, store):
    _endpoint(ml_client, name="tok-ep", auth_mode="aml_token")
    _deploy(ml_client, model, endpoint="tok-ep", script=False)
    ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name="tok-ep", auth_mode="aml_token", traffic={"blue": 100})
    ).result()
    uri = ml_client.online_endpoints.get("tok-ep").scoring_uri
    token = ml_client.online_endpoints.get_keys("tok-ep")
    assert token.access_token and token.expiry_time_utc > time.time() + 3000
    ok = requests.post(uri, json=ROWS, headers={"Authorization": f"Bearer {token.access_token}"}, timeout=10)
    assert ok.status_code == 200
    secret = service.records.get_endpoint(store, "tok-ep")["credentials"]["token_secret"]
    expired, _ = keys.issue_token("tok-ep", secret, lifetime_s=-1)
    refused = requests.post(uri, json=ROWS, headers={"Authorization": f"Bearer {expired}"}, timeout=10)
    assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]
    forged = token.access_token[:-4] + ("AAAA" if not token.access_token.endswith("AAAA") else "BBBB")
    assert requests.post(uri, json=ROWS, headers={"Authorization": f"Bearer {forged}"}, timeout=10).status_code == 401
    with pytest.raises(Exception, match="only for auth_mode key"):
        ml_client.online_endpoints.begin_regenerate_keys(name="tok-ep", key_type="primary")


def test_traffic_split_header_and_mirror(ml_client, served, model, store):
    _deploy(ml_client, model, name="green", script=False)
    _deploy(ml_client, model, name="shadow", script=False)
    endpoint = ManagedOnlineEndpoint(name="iris-ep", traffic={"blue": 90, "green": 10}, mirror_traffic={"shadow": 20})
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    result = run_load(
        served.scoring_uri,
        connections=8,
        requests=2000,
        headers={**_auth(ml_client), "Content-Type": "application/json"},
        body=json.dumps(ROWS).encode(),
        header_to_count="azureml-model-deployment",
    )
    assert result.errors == 0, result.summary()
    shares = {k: 100 * v / 2000 for k, v in result.header_counts.items()}
    assert abs(shares["blue"] - 90) <= 3 and abs(shares["green"] - 10) <= 3 and "shadow" not in shares
    time.sleep(0.5)  # mirrored copies are sent in the background
    mirrored = service.status(store, "iris-ep")["deployments"]["shadow"]["served"]
    assert 300 <= mirrored <= 500  # 20 % of 2000, responses discarded
    pinned = requests.post(
        served.scoring_uri, json=ROWS, timeout=10, headers={**_auth(ml_client), "azureml-model-deployment": "shadow"}
    )
    assert pinned.status_code == 200 and pinned.headers["azureml-model-deployment"] == "shadow"
    unknown = requests.post(
        served.scoring_uri, json=ROWS, timeout=10, headers={**_auth(ml_client), "azureml-model-deployment": "purple"}
    )
    assert unknown.status_code == 404 and "purple" in unknown.json()["error"]["message"]


def test_bad_traffic_and_missing_endpoint_are_refused(ml_client, served, model):
    with pytest.raises(Exception, match="sum to 100"):
        ml_client.online_endpoints.begin_create_or_update(
            ManagedOnlineEndpoint(name="iris-ep", traffic={"blue": 90})
        ).result()
    with pytest.raises(Exception, match="does not have"):
        ml_client.online_endpoints.begin_create_or_update(
            ManagedOnlineEndpoint(name="iris-ep", traffic={"blue": 50, "ghost": 50})
        ).result()
    with pytest.raises(Exception, match="at most 50"):
        ml_client.online_endpoints.begin_create_or_update(
            ManagedOnlineEndpoint(name="iris-ep", mirror_traffic={"blue": 60})
        ).result()
    assert ml_client.online_endpoints.get("iris-ep").traffic == {"blue": 100}  # nothing changed
    with pytest.raises(ResourceNotFoundError, match="Create the endpoint first"):
        _deploy(ml_client, model, endpoint="no-such-ep")
    with pytest.raises(Exception, match="still gets traffic"):
        ml_client.online_deployments.begin_delete(name="blue", endpoint_name="iris-ep")


def test_init_that_raises_fails_the_deployment_with_its_log(ml_client, model, tmp_path):
    code = tmp_path / "bad-score"
    code.mkdir()
    (code / "score.py").write_text(
        "def init():\n    raise RuntimeError('cannot load the model: boom')\n\ndef run(raw):\n    return raw\n"
    )
    _endpoint(ml_client)
    with pytest.raises(Exception, match="boom") as info:
        _deploy(ml_client, model, code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"))
    assert "get-logs" in str(info.value)
    record = ml_client.online_deployments.get(name="blue", endpoint_name="iris-ep")
    assert record.provisioning_state == "Failed"


def test_non_onnx_model_for_the_built_in_scorer_fails_clearly(ml_client, tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(b"\x80\x04not onnx")
    model = ml_client.models.create_or_update(Model(name="pkl", path=str(folder)))
    _endpoint(ml_client)
    with pytest.raises(Exception, match="ONNX"):
        _deploy(ml_client, model, script=False)


def test_request_timeout_and_concurrency_limit(ml_client, model, tmp_path):
    code = tmp_path / "slow"
    code.mkdir()
    (code / "score.py").write_text(
        "import time, json\n\ndef init():\n    pass\n\n"
        "def run(raw):\n    time.sleep(json.loads(raw)['sleep'])\n    return 'ok'\n"
    )
    _endpoint(ml_client, traffic=None)
    _deploy(
        ml_client,
        model,
        code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
        request_settings=OnlineRequestSettings(
            request_timeout_ms=500, max_concurrent_requests_per_instance=1, max_queue_wait_ms=100
        ),
    )
    ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name="iris-ep", traffic={"blue": 100})
    ).result()
    uri = ml_client.online_endpoints.get("iris-ep").scoring_uri
    slow = requests.post(uri, json={"sleep": 2}, headers=_auth(ml_client), timeout=10)
    assert slow.status_code == 408 and "request_timeout_ms" in slow.json()["error"]["message"]
    time.sleep(2)  # the replica finishes the abandoned request
    statuses = []

    def call():
        statuses.append(requests.post(uri, json={"sleep": 0.4}, headers=_auth(ml_client), timeout=10).status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses).count(429) >= 1 and 200 in statuses
    assert requests.post(uri, json={"sleep": 0}, headers=_auth(ml_client), timeout=10).status_code == 200


def test_scale_up_and_down_without_dropping_requests(ml_client, served, store):
    results = {}

    def load():
        results["r"] = run_load(
            served.scoring_uri,
            connections=4,
            duration=6,
            headers={**_auth(ml_client), "Content-Type": "application/json"},
            body=json.dumps(ROWS).encode(),
        )

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(0.5)
    ml_client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(name="blue", endpoint_name="iris-ep", instance_count=3)
    ).result()
    assert len(service.status(store, "iris-ep")["deployments"]["blue"]["replicas"]) == 3
    ml_client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(name="blue", endpoint_name="iris-ep", instance_count=1)
    ).result()
    assert len(service.status(store, "iris-ep")["deployments"]["blue"]["replicas"]) == 1
    loader.join()
    result = results["r"]
    assert result.total > 100 and result.errors == 0, result.summary()


def test_killed_replica_during_load_loses_nothing_and_is_restarted(ml_client, served, store):
    replicas = service.status(store, "iris-ep")["deployments"]["blue"]["replicas"]
    assert len(replicas) == 2
    results = {}

    def load():
        results["r"] = run_load(
            served.scoring_uri,
            connections=8,
            duration=4,
            headers={**_auth(ml_client), "Content-Type": "application/json"},
            body=json.dumps(ROWS).encode(),
        )

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(1)
    os.kill(replicas[0]["pid"], signal.SIGKILL)
    loader.join()
    assert results["r"].errors == 0, results["r"].summary()
    deadline = time.time() + 30
    while time.time() < deadline:
        now = service.status(store, "iris-ep")["deployments"]["blue"]["replicas"]
        if len(now) == 2 and all(r["ready"] for r in now) and sum(r["restarts"] for r in now) == 1:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the killed replica was not restarted: {now}")
    assert replicas[0]["pid"] not in [r["pid"] for r in now]


def test_emulator_restart_keeps_uri_and_keys(ml_client, served, store):
    before_keys = ml_client.online_endpoints.get_keys("iris-ep")
    host = service.host_state(store, "iris-ep")
    replica_pids = [r["pid"] for r in service.status(store, "iris-ep")["deployments"]["blue"]["replicas"]]
    os.kill(host["pid"], signal.SIGKILL)  # a crash: no clean shutdown
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") and _alive(p) for p in replica_pids):
        time.sleep(0.1)
    assert not any(_alive(p) for p in replica_pids), "replicas outlived their host"
    with pytest.raises(requests.ConnectionError):
        requests.post(served.scoring_uri, json=ROWS, headers=_auth(ml_client), timeout=5)
    after = ml_client.online_endpoints.get("iris-ep")  # any call brings the endpoint back
    assert after.scoring_uri == served.scoring_uri
    after_keys = ml_client.online_endpoints.get_keys("iris-ep")
    assert (after_keys.primary_key, after_keys.secondary_key) == (before_keys.primary_key, before_keys.secondary_key)
    # the first call after the restart waits for the deployment's replicas (within request_timeout_ms),
    # never a 404 as if the deployment were gone
    response = requests.post(served.scoring_uri, json=ROWS, headers=_auth(ml_client), timeout=10)
    assert response.status_code == 200 and response.json() == [0, 2], response.text
    assert response.headers["azureml-model-deployment"] == "blue"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _private_endpoint(ml_client, model):
    """iris-ep with public_network_access disabled and deployment blue (the built-in scorer) taking all traffic."""
    _endpoint(ml_client, public_network_access="disabled")
    _deploy(ml_client, model, script=False)
    ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name="iris-ep", traffic={"blue": 100}, public_network_access="disabled")
    ).result()
    return ml_client.online_endpoints.get("iris-ep")


def test_private_endpoint_refuses_outside_calls_but_serves_workspace_jobs(ml_client, model, tmp_path):
    endpoint = _private_endpoint(ml_client, model)
    outside = requests.post(endpoint.scoring_uri, json=ROWS, headers=_auth(ml_client), timeout=10)
    assert outside.status_code == 403 and "public_network_access" in outside.json()["error"]["message"]
    code = tmp_path / "caller"
    code.mkdir()
    (code / "call.py").write_text(
        "import json, sys, urllib.request\n"
        "req = urllib.request.Request(sys.argv[1], data=json.dumps({'data': [[5.1, 3.5, 1.4, 0.2]]}).encode(),\n"
        "    headers={'Content-Type': 'application/json', 'Authorization': 'Bearer ' + sys.argv[2]})\n"
        "print('ANSWER', urllib.request.urlopen(req, timeout=10).read().decode())\n"
    )
    key = ml_client.online_endpoints.get_keys("iris-ep").primary_key
    job = ml_client.jobs.create_or_update(
        command(
            code=str(code),
            command=f"python call.py {endpoint.scoring_uri} {key}",
            environment="azureml:AzureML-sklearn-1.5@latest",
        )
    )
    done = ml_client.jobs.wait(job.name, timeout=120)
    log = (
        (ml_client.store.job_dir(job.name) / "artifacts" / "user_logs" / "std_log.txt").read_text()
        if hasattr(ml_client, "store")
        else ""
    )
    assert done.status == "Completed", log
    assert "ANSWER [0]" in log


def test_a_process_posing_as_a_job_is_refused_by_a_private_endpoint(ml_client, model, store):
    """Job variables set by hand are no credential: the gateway checks the job token that only amlemu can sign."""
    import subprocess
    import sys

    endpoint = _private_endpoint(ml_client, model)
    key = ml_client.online_endpoints.get_keys("iris-ep").primary_key
    call = (
        "import json, sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1], data=b'{\"data\": [[5.1, 3.5, 1.4, 0.2]]}',\n"
        "    headers={'Content-Type': 'application/json', 'Authorization': 'Bearer ' + sys.argv[2]})\n"
        "try:\n    print(urllib.request.urlopen(req, timeout=10).status)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n"
    )
    job = ml_client.jobs.create_or_update(
        command(code=str(IRIS / "src"), command="python -c pass", environment="azureml:AzureML-sklearn-1.5@latest")
    )
    posing = {**os.environ, "AZUREML_RUN_ID": job.name, "MLFLOW_TRACKING_URI": store.tracking_uri}
    for token in (None, "0" * 64, secrets.job_token(b"another workspace's secret" + bytes(5), job.name)):
        env = dict(posing, **({secrets.JOB_TOKEN_ENV: token} if token else {}))
        out = subprocess.run(
            [sys.executable, "-c", call, endpoint.scoring_uri, key], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.stdout.strip() == "403", (token, out.stdout, out.stderr)
    real = dict(posing, **{secrets.JOB_TOKEN_ENV: secrets.job_token(secrets.workspace_secret(store.root), job.name)})
    out = subprocess.run(
        [sys.executable, "-c", call, endpoint.scoring_uri, key], env=real, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "200", out.stderr
    assert (store.root / "workspace.secret").stat().st_mode & 0o777 == 0o600


def test_invoke_errors_are_http_errors(ml_client, served):
    with pytest.raises(HttpResponseError, match="424"):
        ml_client.online_endpoints.invoke(endpoint_name="iris-ep", input_data='{"data": [[1, 2]]}')


def test_delete_endpoint_stops_everything(ml_client, served, store):
    host = service.host_state(store, "iris-ep")
    pids = [r["pid"] for r in service.status(store, "iris-ep")["deployments"]["blue"]["replicas"]]
    ml_client.online_endpoints.begin_delete(name="iris-ep").result()
    assert not _alive(host["pid"]) and not any(_alive(p) for p in pids)
    with pytest.raises(ResourceNotFoundError):
        ml_client.online_endpoints.get("iris-ep")
    assert not (store.root / "endpoints" / "iris-ep").exists()


def test_a_deployment_whose_host_died_while_creating_is_resumed_by_reading_it(ml_client, model, store):
    """The recovery rule: any read of an endpoint or of its deployments brings a dead host back, and the new
    host finishes a deployment left Creating (it used to show Creating forever)."""
    _endpoint(ml_client)
    spec = {"name": "blue", "endpoint_name": "iris-ep", "model": f"azureml:iris:{model.version}", "instance_count": 1}
    service.create_or_update_deployment(store, spec, IRIS, wait=False)
    host = service.host_state(store, "iris-ep")
    os.kill(host["pid"], signal.SIGKILL)
    assert service.records.get_deployment(store, "iris-ep", "blue")["provisioning_state"] == "Creating"
    deadline = time.time() + 60
    state = None
    while time.time() < deadline:
        state = ml_client.online_deployments.get("blue", endpoint_name="iris-ep").provisioning_state
        if state == "Succeeded":
            break
        time.sleep(0.2)
    assert state == "Succeeded"
    assert service.host_state(store, "iris-ep")["pid"] != host["pid"]
    os.kill(service.host_state(store, "iris-ep")["pid"], signal.SIGKILL)
    assert [d.name for d in ml_client.online_deployments.list(endpoint_name="iris-ep")] == ["blue"]
    assert service.host_state(store, "iris-ep"), "listing the deployments brings the host back"
