"""Replicas of the built-in ONNX scorer behind a real gateway: the direct server, reached over its Unix socket.

The gateway reaches each such replica over the Unix socket it offered; a replica killed under load
loses no request (the gateway retries on the other one) and its restart offers a new socket, which
the gateway uses from then on.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

from emulator.endpoints import service
from emulator.testing.load import run_load

ROWS = {"data": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}


@pytest.fixture
def endpoint(ml_client, iris_model):
    """iris-direct: the built-in scorer (no scoring script) on 2 replicas, all traffic."""
    model = ml_client.models.create_or_update(Model(name="iris", path=str(iris_model), type="custom_model"))
    endpoint = ManagedOnlineEndpoint(name="iris-direct", auth_mode="key")
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    deployment = ManagedOnlineDeployment(name="blue", endpoint_name="iris-direct", model=model, instance_count=2)
    ml_client.online_deployments.begin_create_or_update(deployment).result()
    endpoint.traffic = {"blue": 100}
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    return ml_client.online_endpoints.get("iris-direct")


def _replicas(store) -> list[dict]:
    return service.status(store, "iris-direct")["deployments"]["blue"]["replicas"]


def test_a_killed_direct_replica_loses_nothing_and_its_restart_is_reached_over_its_socket(ml_client, endpoint, store):
    replicas = _replicas(store)
    assert [r["channel"] for r in replicas] == ["unix", "unix"], replicas
    key = ml_client.online_endpoints.get_keys("iris-direct").primary_key
    results = {}

    def load():
        results["r"] = run_load(
            endpoint.scoring_uri,
            connections=8,
            duration=4,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            body=json.dumps(ROWS).encode(),
            keep_samples=1,
        )

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(1)
    os.kill(replicas[0]["pid"], signal.SIGKILL)
    loader.join()
    result = results["r"]
    assert result.errors == 0 and result.total > 100, result.summary()
    assert json.loads(result.samples[0].body) == [0, 2]
    deadline = time.time() + 30
    while time.time() < deadline:
        now = _replicas(store)
        if len(now) == 2 and all(r["ready"] for r in now) and sum(r["restarts"] for r in now) == 1:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the killed replica was not restarted: {now}")
    assert [r["channel"] for r in now] == ["unix", "unix"], now
    after = run_load(
        endpoint.scoring_uri,
        connections=4,
        requests=400,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        body=json.dumps(ROWS).encode(),
    )
    assert after.by_status == {200: 400}, after.summary()
    served = service.status(store, "iris-direct")["deployments"]["blue"]
    assert served["served"] >= result.total + 400
