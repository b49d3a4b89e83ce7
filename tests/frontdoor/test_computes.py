"""Computes through the real ``MLClient`` against ``amlemu serve``: clusters, instances, Kubernetes, sizes, usage."""

from __future__ import annotations

import uuid

import pytest
import requests
from azure.ai.ml.entities import (
    AmlCompute,
    ComputeInstance,
    KubernetesCompute,
    VirtualMachineCompute,
    VirtualMachineSshSettings,
)
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _arm(front_door, method: str, path: str, **kwargs) -> requests.Response:
    """A raw ARM call with the token ``DefaultAzureCredential`` gets (for what the SDK does not send itself)."""
    from azure.identity import DefaultAzureCredential

    base = f"https://127.0.0.1:{front_door.port + 1}"
    token = DefaultAzureCredential().get_token(f"{base}/.default").token
    return requests.request(
        method,
        f"{base}{path}",
        params={"api-version": "2025-12-01"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        **kwargs,
    )


def _compute_path(sdk, name: str) -> str:
    return (
        f"/subscriptions/{sdk.subscription_id}/resourceGroups/{sdk.resource_group_name}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{sdk.workspace_name}/computes/{name}"
    )


def test_cluster_create_get_list_update_nodes_and_delete(sdk, front_door):
    name = _name("cpu")
    created = sdk.compute.begin_create_or_update(
        AmlCompute(name=name, size="Standard_DS3_v2", min_instances=0, max_instances=2)
    ).result()
    assert isinstance(created, AmlCompute) and created.name == name and created.provisioning_state == "Succeeded"
    try:
        got = sdk.compute.get(name)
        assert isinstance(got, AmlCompute)
        assert (got.size, got.min_instances, got.max_instances) == ("Standard_DS3_v2", 0, 2)
        assert got.idle_time_before_scale_down == 120 and got.tier == "dedicated" and got.created_on
        assert got.id == _compute_path(sdk, name)

        assert name in [c.name for c in sdk.compute.list()]
        assert name in [c.name for c in sdk.compute.list(compute_type="AmlCompute")]
        assert name not in [c.name for c in sdk.compute.list(compute_type="ComputeInstance")]

        got.max_instances = 3
        updated = sdk.compute.begin_update(got).result()
        assert updated.max_instances == 3 and sdk.compute.get(name).max_instances == 3
        assert list(sdk.compute.list_nodes(name)) == []  # min_instances 0: no node until a job asks

        # ARM's cluster update (PATCH scaleSettings), and the read-only allocation fields
        r = _arm(
            front_door,
            "PATCH",
            _compute_path(sdk, name),
            json={"properties": {"properties": {"scaleSettings": {"maxNodeCount": 4, "minNodeCount": 1}}}},
        )
        assert r.status_code == 200, r.text
        props = r.json()["properties"]["properties"]
        assert props["scaleSettings"]["maxNodeCount"] == 4 and props["scaleSettings"]["minNodeCount"] == 1
        assert props["currentNodeCount"] == 1 and props["nodeStateCounts"]["idleNodeCount"] == 1
        assert r.json()["properties"]["provisioningState"] == "Succeeded"
        assert sdk.compute.get(name).min_instances == 1

        (node,) = sdk.compute.list_nodes(name)
        # azure-ai-ml 1.35 copies the REST model's wire keys into AmlComputeNodeInfo's __dict__
        assert vars(node)["nodeState"] == "idle" and vars(node)["nodeId"].startswith("tvmps_")
    finally:
        sdk.compute.begin_delete(name).result()
    with pytest.raises(ResourceNotFoundError) as err:
        sdk.compute.get(name)
    assert f"Compute '{name}' not found" in str(err.value)


def test_sizes_and_usage(sdk):
    sizes = list(sdk.compute.list_sizes())
    ds3 = next(vars(s) for s in sizes if vars(s)["name"] == "Standard_DS3_v2")
    assert ds3["vCPUs"] == 4 and ds3["memoryGB"] == 14 and ds3["family"] == "standardDSv2Family"
    assert all(
        "AmlCompute" in vars(s)["supportedComputeTypes"] for s in sdk.compute.list_sizes(compute_type="amlcompute")
    )

    def usage() -> dict[str, int]:
        return {vars(u)["name"]["value"]: vars(u)["currentValue"] for u in sdk.compute.list_usage()}

    before = usage()
    assert {"Clusters", "standardDSv2Family", "Total Cluster Dedicated Regional vCPUs"} <= set(before)
    name = _name("quota")
    sdk.compute.begin_create_or_update(
        AmlCompute(name=name, size="Standard_DS3_v2", min_instances=1, max_instances=1)
    ).result()
    try:
        after = usage()
        assert after["Clusters"] == before["Clusters"] + 1
        assert after["standardDSv2Family"] == before["standardDSv2Family"] + 4  # one DS3_v2 node, 4 vCPUs
    finally:
        sdk.compute.begin_delete(name).result()
    entry = next(u for u in sdk.compute.list_usage() if vars(u)["name"]["value"] == "Clusters")
    assert vars(entry)["id"].startswith(f"/subscriptions/{sdk.subscription_id}/")


def test_instance_stop_start_restart_and_delete(sdk):
    name = _name("ci")
    created = sdk.compute.begin_create_or_update(ComputeInstance(name=name, size="Standard_DS3_v2")).result()
    try:
        assert isinstance(created, ComputeInstance) and created.state == "Running"
        sdk.compute.begin_stop(name).result()
        assert sdk.compute.get(name).state == "Stopped"
        with pytest.raises(HttpResponseError) as err:  # the operation fails with amlemu's reason
            sdk.compute.begin_stop(name).result()
        assert f"Compute instance '{name}' is Stopped; stop needs it Running" in str(err.value)
        sdk.compute.begin_start(name).result()
        assert sdk.compute.get(name).state == "Running"
        sdk.compute.begin_restart(name).result()
        got = sdk.compute.get(name)
        assert (
            got.state == "Running" and got.last_operation["operationName"] == "Restart"
        )  # the REST model's keys, as azure-ai-ml keeps them
        assert got.created_on and got.size == "Standard_DS3_v2"
    finally:
        sdk.compute.begin_delete(name).result()
    with pytest.raises(ResourceNotFoundError):
        sdk.compute.get(name)


def test_kubernetes_attach_and_detach(sdk):
    name = _name("k8s")
    attached = sdk.compute.begin_attach(KubernetesCompute(name=name, namespace="inference")).result()
    assert isinstance(attached, KubernetesCompute) and attached.namespace == "inference"
    assert sdk.compute.get(name).namespace == "inference"
    sdk.compute.begin_delete(name, action="Detach").result()
    with pytest.raises(ResourceNotFoundError):
        sdk.compute.get(name)


def test_bad_input_is_refused_with_amlemus_message(sdk, front_door):
    name = _name("bad")
    with pytest.raises(HttpResponseError) as err:
        sdk.compute.begin_create_or_update(AmlCompute(name=name, min_instances=3, max_instances=2)).result()
    assert err.value.status_code == 400
    assert "min_instances (3) is greater than max_instances (2)" in str(err.value)

    with pytest.raises(HttpResponseError) as err:
        sdk.compute.begin_create_or_update(AmlCompute(name=name, size="Standard_Nope", max_instances=2)).result()
    assert err.value.status_code == 400 and "Unknown VM size 'Standard_Nope'" in str(err.value)

    with pytest.raises(HttpResponseError) as err:  # a compute type amlemu does not emulate
        sdk.compute.begin_create_or_update(
            VirtualMachineCompute(
                name=name,
                resource_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/vm",
                ssh_settings=VirtualMachineSshSettings(admin_username="azureuser", admin_password="not-a-secret-1!"),
            )
        ).result()
    assert err.value.status_code == 501 and "VirtualMachine" in str(err.value) and "not emulated" in str(err.value)

    with pytest.raises(ResourceNotFoundError) as err:
        sdk.compute.begin_start("no-such-compute")
    assert "Compute 'no-such-compute' not found" in str(err.value)

    r = _arm(front_door, "DELETE", _compute_path(sdk, "no-such-compute"))  # no underlyingResourceAction
    assert r.status_code == 400 and "underlyingResourceAction" in r.json()["error"]["message"]

    cluster = _name("cpu")
    sdk.compute.begin_create_or_update(AmlCompute(name=cluster, max_instances=1)).result()
    try:
        with pytest.raises(HttpResponseError) as err:  # start/stop are for instances: the operation fails
            sdk.compute.begin_stop(cluster).result()
        assert "'stop' applies to compute instances" in str(err.value)
    finally:
        sdk.compute.begin_delete(cluster).result()
