"""Online endpoints through the `amlemu` CLI, as the Azure ML docs drive `az ml`: the sample YAML files in
sample_models/iris/deploy, real subprocesses, real hosts and scoring servers on loopback."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import requests

from emulator.runtime.proctree import is_alive
from tests.conftest import SAMPLES

IRIS = SAMPLES / "iris"
DEPLOY = IRIS / "deploy"
REQUEST = str(IRIS / "sample-request.json")
ROWS = {"data": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}


@pytest.fixture
def blue(cli, iris_model):
    """iris-ep from endpoint.yml with deployment blue (blue-deployment.yml) taking all traffic."""
    cli.json("model", "create", "--name", "iris", "--path", str(iris_model))
    created = cli.json("online-endpoint", "create", "--file", str(DEPLOY / "endpoint.yml"))
    assert created["name"] == "iris-ep" and created["traffic"] == {}
    deployment = cli.json("online-deployment", "create", "--file", str(DEPLOY / "blue-deployment.yml"), "--all-traffic")
    assert deployment["provisioning_state"] == "Succeeded" and deployment["model"] == "azureml:iris:1"
    return cli


def rejected(cli, *args: str) -> str:
    """Run a command that must fail: exit 1, one `ERROR:` line on stderr, no traceback, nothing on stdout."""
    proc = cli.run(*args, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR:"), proc.stderr
    assert proc.stdout == ""
    return lines[0]


def scoring(cli) -> tuple[str, dict[str, str]]:
    endpoint = cli.json("online-endpoint", "show", "--name", "iris-ep")
    key = cli.json("online-endpoint", "get-credentials", "--name", "iris-ep")["primaryKey"]
    return endpoint["scoring_uri"], {"Authorization": f"Bearer {key}"}


def test_show_and_list_print_az_ml_shapes(blue):
    shown = blue.json("online-endpoint", "show", "--name", "iris-ep")
    assert shown["name"] == "iris-ep" and shown["kind"] == "Managed" and shown["auth_mode"] == "key"
    assert shown["provisioning_state"] == "Succeeded" and shown["traffic"] == {"blue": 100}
    assert shown["mirror_traffic"] == {} and shown["public_network_access"] == "enabled"
    assert shown["scoring_uri"].startswith("http://127.0.0.1:") and shown["scoring_uri"].endswith("/score")
    assert shown["openapi_uri"] == shown["scoring_uri"].removesuffix("/score") + "/swagger.json"
    assert shown["id"].endswith("/onlineEndpoints/iris-ep") and shown["tags"] == {"model": "iris"}
    assert "credentials" not in shown and "port" not in shown  # keys only through get-credentials
    assert blue.json("online-endpoint", "list") == [shown]
    deployments = blue.json("online-deployment", "list", "--endpoint-name", "iris-ep")
    assert [d["name"] for d in deployments] == ["blue"]
    assert deployments[0]["code_configuration"]["scoring_script"] == "score.py"
    assert deployments[0]["environment"] == "azureml:AzureML-sklearn-1.5@latest"
    assert deployments[0]["instance_type"] == "Standard_DS3_v2"


def test_blue_green_mirror_and_invoke(blue):
    green = blue.json("online-deployment", "create", "--file", str(DEPLOY / "green-deployment.yml"))
    assert green["provisioning_state"] == "Succeeded"
    assert blue.json("online-endpoint", "show", "--name", "iris-ep")["traffic"] == {"blue": 100}  # green gets none yet
    # a deployment that takes live traffic cannot also be the mirror target
    message = rejected(
        blue,
        "online-endpoint",
        "update",
        "--name",
        "iris-ep",
        "--traffic",
        "blue=90 green=10",
        "--mirror-traffic",
        "green=10",
    )
    assert "green" in message and "live traffic" in message
    assert blue.json("online-endpoint", "show", "--name", "iris-ep")["traffic"] == {"blue": 100}
    split = blue.json("online-endpoint", "update", "--name", "iris-ep", "--traffic", "blue=90 green=10")
    assert split["traffic"] == {"blue": 90, "green": 10}
    mirrored = blue.json(
        "online-endpoint", "update", "--name", "iris-ep", "--traffic", "blue=100", "--mirror-traffic", "green=10"
    )
    assert mirrored["traffic"] == {"blue": 100} and mirrored["mirror_traffic"] == {"green": 10}
    assert blue.json("online-endpoint", "invoke", "--name", "iris-ep", "--request-file", REQUEST) == [0, 1, 2]
    assert blue.json(
        "online-endpoint", "invoke", "--name", "iris-ep", "--request-file", REQUEST, "--deployment-name", "green"
    ) == [0, 1, 2]
    uri, auth = scoring(blue)
    answers = [requests.post(uri, json=ROWS, headers=auth, timeout=10) for _ in range(10)]
    assert {r.headers["azureml-model-deployment"] for r in answers} == {"blue"}  # mirror answers are discarded
    # the mirror target cannot be deleted until its mirror share is 0
    assert "mirror" in rejected(
        blue, "online-deployment", "delete", "--name", "green", "--endpoint-name", "iris-ep", "--yes"
    )
    blue.json("online-endpoint", "update", "--name", "iris-ep", "--mirror-traffic", "green=0")
    blue.run("online-deployment", "delete", "--name", "green", "--endpoint-name", "iris-ep", "--yes")
    assert [d["name"] for d in blue.json("online-deployment", "list", "--endpoint-name", "iris-ep")] == ["blue"]


def test_credentials_and_key_regeneration(blue):
    uri, auth = scoring(blue)
    before = blue.json("online-endpoint", "get-credentials", "--name", "iris-ep")
    assert set(before) == {"primaryKey", "secondaryKey"} and before["primaryKey"] != before["secondaryKey"]
    assert requests.post(uri, json=ROWS, headers=auth, timeout=10).status_code == 200
    blue.run("online-endpoint", "regenerate-keys", "--name", "iris-ep", "--key-type", "primary")
    after = blue.json("online-endpoint", "get-credentials", "--name", "iris-ep")
    assert after["primaryKey"] != before["primaryKey"] and after["secondaryKey"] == before["secondaryKey"]
    assert requests.post(uri, json=ROWS, headers=auth, timeout=10).status_code == 401  # the old key, at once
    fresh = requests.post(uri, json=ROWS, headers={"Authorization": f"Bearer {after['primaryKey']}"}, timeout=10)
    assert fresh.status_code == 200 and fresh.json() == [0, 2]


def test_logs_and_scaling_with_set(blue):
    logs = blue.run(
        "online-deployment", "get-logs", "--name", "blue", "--endpoint-name", "iris-ep", "--lines", "50"
    ).stdout
    lines = logs.strip().splitlines()
    assert 0 < len(lines) <= 50 and "init" in logs.lower()
    assert (
        "Bearer" not in logs
        and blue.json("online-endpoint", "get-credentials", "--name", "iris-ep")["primaryKey"] not in logs
    )
    events = blue.run(
        "online-deployment",
        "get-logs",
        "--name",
        "blue",
        "--endpoint-name",
        "iris-ep",
        "--container",
        "storage-initializer",
    ).stdout
    assert "Succeeded" in events
    updated = blue.json(
        "online-deployment", "update", "--name", "blue", "--endpoint-name", "iris-ep", "--set", "instance_count=3"
    )
    assert updated["instance_count"] == 3 and updated["provisioning_state"] == "Succeeded"
    assert blue.json("online-deployment", "show", "--name", "blue", "--endpoint-name", "iris-ep")["instance_count"] == 3
    from emulator.endpoints import service
    from emulator.store import WorkspaceStore

    store = WorkspaceStore(blue.home / "workspaces" / "default", "default")
    replicas = service.status(store, "iris-ep")["deployments"]["blue"]["replicas"]
    assert len(replicas) == 3 and all(r["ready"] for r in replicas)
    assert blue.json("online-endpoint", "invoke", "--name", "iris-ep", "--request-file", REQUEST) == [0, 1, 2]


def test_export_postman_writes_a_collection(blue, tmp_path):
    target = tmp_path / "iris-ep.postman_collection.json"
    with open(target, "w") as out:  # `amlemu online-endpoint export-postman --name iris-ep > file`
        proc = blue.run("online-endpoint", "export-postman", "--name", "iris-ep")
        out.write(proc.stdout)
    collection = json.loads(target.read_text())
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    uri, _ = scoring(blue)
    assert {"key": "scoring_uri", "value": uri, "type": "string"} in collection["variable"]
    assert any(item["request"]["method"] == "POST" for item in collection["item"])


def test_bad_input_is_refused_and_changes_nothing(blue, tmp_path):
    shown = blue.json("online-endpoint", "show", "--name", "iris-ep")
    message = rejected(blue, "online-endpoint", "update", "--name", "iris-ep", "--traffic", "blue=90")
    assert "sum to 100" in message and "--traffic" in message
    message = rejected(blue, "online-endpoint", "update", "--name", "iris-ep", "--traffic", "blue=abc")
    assert "blue=abc" in message and "blue=90 green=10" in message
    message = rejected(blue, "online-endpoint", "update", "--name", "iris-ep", "--traffic", "blue=50 ghost=50")
    assert "ghost" in message and "Create it first" in message
    message = rejected(blue, "online-endpoint", "update", "--name", "iris-ep", "--mirror-traffic", "blue=60")
    assert "at most 50" in message
    assert blue.json("online-endpoint", "show", "--name", "iris-ep") == shown
    # a deployment whose endpoint does not exist
    shutil.copytree(IRIS / "score", tmp_path / "score")
    orphan = tmp_path / "deploy" / "orphan-deployment.yml"
    orphan.parent.mkdir()
    orphan.write_text(
        (DEPLOY / "green-deployment.yml").read_text().replace("endpoint_name: iris-ep", "endpoint_name: no-such-ep")
    )
    message = rejected(blue, "online-deployment", "create", "--file", str(orphan))
    assert "no-such-ep" in message and "online-endpoint create" in message
    message = rejected(blue, "online-deployment", "create", "--file", str(DEPLOY / "blue-deployment.yml"))
    assert "already exists" in message and "online-deployment update" in message
    message = rejected(blue, "online-endpoint", "create", "--file", str(DEPLOY / "endpoint.yml"))
    assert "already exists" in message
    # a deployment that takes traffic cannot be deleted
    message = rejected(blue, "online-deployment", "delete", "--name", "blue", "--endpoint-name", "iris-ep", "--yes")
    assert "still gets traffic" in message and "--traffic" in message
    assert [d["name"] for d in blue.json("online-deployment", "list", "--endpoint-name", "iris-ep")] == ["blue"]
    assert blue.json("online-endpoint", "list") == [shown]
    assert blue.json("online-endpoint", "invoke", "--name", "iris-ep", "--request-file", REQUEST) == [0, 1, 2]


def test_delete_endpoint_leaves_no_host_process(blue):
    host_file = blue.home / "workspaces" / "default" / "endpoints" / "iris-ep" / "host.json"
    host = json.loads(host_file.read_text())
    from emulator.endpoints import service
    from emulator.store import WorkspaceStore

    store = WorkspaceStore(blue.home / "workspaces" / "default", "default")
    replica_pids = [r["pid"] for r in service.status(store, "iris-ep")["deployments"]["blue"]["replicas"]]
    assert is_alive(host["pid"], host["start"]) and all(is_alive(p) for p in replica_pids)
    uri, auth = scoring(blue)
    blue.run("online-endpoint", "delete", "--name", "iris-ep", "--yes")
    deadline = time.monotonic() + 30  # the CLI waits for the host; this only bounds a hang
    while time.monotonic() < deadline and (is_alive(host["pid"], host["start"]) or any(map(is_alive, replica_pids))):
        time.sleep(0.05)
    assert not is_alive(host["pid"], host["start"]), "the endpoint's host outlived the endpoint"
    assert not any(is_alive(p) for p in replica_pids), "replicas outlived the endpoint"
    assert not host_file.parent.exists()
    with pytest.raises(requests.ConnectionError):
        requests.post(uri, json=ROWS, headers=auth, timeout=5)
    assert blue.json("online-endpoint", "list") == []
    message = rejected(blue, "online-endpoint", "show", "--name", "iris-ep")
    assert "not found" in message
