"""A deployment whose environment brings azureml-inference-server-http runs that server (azmlinfsrv, at the
user's version) behind amlemu's gateway, as Azure does; one without it runs amlemu's scoring server. The same
scoring script, model and requests get the same answers from both, and neither replica answers a caller that
skipped the gateway."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import requests
import sklearn
from azure.ai.ml.entities import CodeConfiguration, Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

from emulator.endpoints import service
from emulator.runtime import pythons
from tests.conftest import SAMPLES

#: the version Azure's own managed online endpoint example pins, not the newest: the user's version runs
SERVER_VERSION = "1.4.0"
ENDPOINT = "infsrv-ep"
ROWS = {"data": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3], [5.9, 3.0, 4.2, 1.5]]}

SCORE_PY = """
import json
import os
import pickle

model = None


def init():
    global model
    # the registered folder keeps its name under AZUREML_MODEL_DIR, as on Azure
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "model.pkl"), "rb") as f:
        model = pickle.load(f)
    print("score.py init: replica secret visible:", any("REPLICA_SECRET" in k for k in os.environ))


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return {"labels": model.predict(rows).tolist(), "rows": len(rows)}
"""


PLAIN_SCORE_PY = """
import json


def init():
    pass


def run(raw_data, request_headers):
    return {
        "sums": [sum(row) for row in json.loads(raw_data)["data"]],
        "replica_secret_header_seen": any("amlemu" in name.lower() for name in request_headers),
    }
"""


def conda_file(folder: Path, name: str, *pip: str, python: str = "3.11") -> Path:
    lines = [f"name: {name}", "channels:", "  - conda-forge", "dependencies:", f"  - python={python}", "  - pip"]
    lines.append("  - pip:")
    lines += [f"    - {req}" for req in pip]
    path = folder / f"{name}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def setup(ml_client, tmp_path):
    """A pickled scikit-learn model, a scoring script, and an endpoint with key auth."""
    from sklearn.linear_model import LogisticRegression

    table = [line.split(",") for line in (SAMPLES / "iris" / "data" / "iris.csv").read_text().splitlines()[1:]]
    features = [[float(v) for v in row[:4]] for row in table]
    labels = sorted({row[4] for row in table})
    target = [labels.index(row[4]) for row in table]
    classifier = LogisticRegression(max_iter=500).fit(features, target)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pkl").write_bytes(pickle.dumps(classifier))
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text(SCORE_PY)
    model = ml_client.models.create_or_update(Model(name="iris-pkl", path=str(tmp_path / "model"), type="custom_model"))
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=ENDPOINT, auth_mode="key")).result()
    expected = {"labels": classifier.predict(ROWS["data"]).tolist(), "rows": 3}
    return model, tmp_path, expected


def deploy(ml_client, model, folder: Path, name: str, conda: Path, code: str = "code"):
    return ml_client.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(
            name=name,
            endpoint_name=ENDPOINT,
            model=model,
            instance_count=1,
            environment=Environment(
                conda_file=str(conda), image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
            ),
            code_configuration=CodeConfiguration(code=str(folder / code), scoring_script="score.py"),
        )
    ).result()


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def listening_hosts(port: int) -> set[str]:
    """The local addresses a TCP socket listens on at ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_environments_own_server_and_amlemus_answer_alike_behind_the_gateway(ml_client, setup, store):
    model, folder, expected = setup
    sklearn_pin = f"scikit-learn=={sklearn.__version__}"
    own = conda_file(folder, "with-server", f"azureml-inference-server-http=={SERVER_VERSION}", sklearn_pin)
    plain = conda_file(folder, "without-server", sklearn_pin)
    assert deploy(ml_client, model, folder, "own", own).provisioning_state == "Succeeded"
    assert deploy(ml_client, model, folder, "amlemu", plain).provisioning_state == "Succeeded"

    # the replicas: azmlinfsrv at the pinned version, and amlemu's server
    replicas = {name: service.status(store, ENDPOINT)["deployments"][name]["replicas"][0] for name in ("own", "amlemu")}
    assert "azmlinfsrv" in cmdline(replicas["own"]["pid"]), cmdline(replicas["own"]["pid"])
    assert "emulator.serving" in cmdline(replicas["amlemu"]["pid"])
    own_log = ml_client.online_deployments.get_logs(name="own", endpoint_name=ENDPOINT, lines=200)
    assert f"Azure ML Inferencing HTTP server v{SERVER_VERSION}" in own_log, own_log
    assert "Azure ML Inferencing HTTP server" not in Path(replicas["amlemu"]["log"]).read_text()
    events = ml_client.online_deployments.get_logs(
        name="own", endpoint_name=ENDPOINT, lines=100, container_type="storage-initializer"
    )
    assert f"azureml-inference-server-http {SERVER_VERSION} (azmlinfsrv)" in events
    for replica in replicas.values():  # the scoring script never sees the secret; the log never holds it
        started_with = Path(f"/proc/{replica['pid']}/environ").read_bytes().split(b"\0")
        [secret] = [v.partition(b"=")[2].decode() for v in started_with if v.startswith(b"AMLEMU_REPLICA_SECRET=")]
        text = Path(replica["log"]).read_text()
        assert "replica secret visible: False" in text and secret not in text, text

    # the same requests, through the gateway with the endpoint's key, get the same answers from both
    uri = ml_client.online_endpoints.get(ENDPOINT).scoring_uri
    key = ml_client.online_endpoints.get_keys(ENDPOINT).primary_key
    answers = {}
    for name in ("own", "amlemu"):
        pick = {"azureml-model-deployment": name, "Authorization": f"Bearer {key}"}
        scored = requests.post(uri, json=ROWS, headers=pick, timeout=30)
        assert scored.status_code == 200, (name, scored.text)
        assert scored.headers["azureml-model-deployment"] == name
        answers[name] = scored.json()
        # a run() that raises: the model's 500 becomes the gateway's 424, as on Azure, from either server
        failed = requests.post(uri, json={"data": "not rows"}, headers=pick, timeout=30)
        assert failed.status_code == 424 and failed.headers["ms-azureml-model-error-statuscode"] == "500", failed.text
        assert failed.headers.get("x-ms-run-function-failed", "").lower() == "true"
        swagger = requests.get(uri.replace("/score", "/swagger.json"), headers=pick, timeout=30)
        assert swagger.status_code == 200 and swagger.json()["swagger"] == "2.0"
        # no key: the gateway refuses before any replica sees the request
        assert requests.post(uri, json=ROWS, headers={"azureml-model-deployment": name}, timeout=30).status_code == 401
    assert answers["own"] == answers["amlemu"] == expected
    invoked = ml_client.online_endpoints.invoke(
        endpoint_name=ENDPOINT, deployment_name="own", request_file=str(write_request(folder))
    )
    assert json.loads(invoked) == expected

    # a caller that skips the gateway: refused by either replica, which listens on loopback only
    for name, replica in replicas.items():
        direct = f"http://127.0.0.1:{replica['port']}"
        for response in (
            requests.post(f"{direct}/score", json=ROWS, timeout=30),
            requests.get(f"{direct}/", timeout=30),
            requests.get(f"{direct}/swagger.json", headers={"x-amlemu-replica-secret": "guess"}, timeout=30),
        ):
            assert response.status_code == 403, (name, response.status_code, response.text)
            assert response.json()["error"]["code"] == "Forbidden"
        assert listening_hosts(replica["port"]) == {"0100007F"}, (name, listening_hosts(replica["port"]))


def write_request(folder: Path) -> Path:
    path = folder / "request.json"
    path.write_text(json.dumps(ROWS))
    return path


def test_both_servers_run_on_the_python_azures_example_pins(ml_client, setup, store):
    """Azure's managed online endpoint example pins python=3.9 with azureml-inference-server-http 1.4.0: the
    replica runs that server on 3.9 (where this machine has a 3.9; else on the build's Python), and amlemu's
    server runs there too (without granian, which needs 3.10); neither passes the replica secret to run()."""
    model, folder, _ = setup
    (folder / "plain").mkdir()
    (folder / "plain" / "score.py").write_text(PLAIN_SCORE_PY)
    wanted = "3.9" if pythons.find_interpreter("3.9") else pythons.minor_version(pythons.host_version())
    own = conda_file(folder, "own-39", f"azureml-inference-server-http=={SERVER_VERSION}", python="3.9")
    plain = conda_file(folder, "plain-39", "inference-schema", python="3.9")
    assert deploy(ml_client, model, folder, "own39", own, code="plain").provisioning_state == "Succeeded"
    assert deploy(ml_client, model, folder, "amlemu39", plain, code="plain").provisioning_state == "Succeeded"
    key = ml_client.online_endpoints.get_keys(ENDPOINT).primary_key
    uri = ml_client.online_endpoints.get(ENDPOINT).scoring_uri
    answers = {}
    for name, marker in (("own39", "azmlinfsrv"), ("amlemu39", "emulator.serving")):
        replica = service.status(store, ENDPOINT)["deployments"][name]["replicas"][0]
        assert marker in cmdline(replica["pid"])
        assert Path(f"/proc/{replica['pid']}/exe").resolve().name == f"python{wanted}"
        pick = {"azureml-model-deployment": name, "Authorization": f"Bearer {key}"}
        scored = requests.post(uri, json=ROWS, headers=pick, timeout=30)
        assert scored.status_code == 200, (name, scored.text)
        answers[name] = scored.json()
        assert requests.post(f"http://127.0.0.1:{replica['port']}/score", json=ROWS, timeout=30).status_code == 403
    assert answers["own39"] == answers["amlemu39"]
    assert answers["own39"] == {"sums": [sum(row) for row in ROWS["data"]], "replica_secret_header_seen": False}
