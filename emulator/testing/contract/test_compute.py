"""Compute clusters: create, get, list (by type), update, delete; an unknown compute is not found."""

from __future__ import annotations

import pytest
from azure.ai.ml.entities import AmlCompute
from azure.core.exceptions import ResourceNotFoundError


def test_cluster_create_get_list_update_and_delete(ml_client, unique_name):
    name = unique_name("compute", "cpu")
    cluster = AmlCompute(name=name, size="Standard_DS3_v2", min_instances=0, max_instances=2)
    created = ml_client.compute.begin_create_or_update(cluster).result()
    try:
        assert isinstance(created, AmlCompute) and created.name == name and created.provisioning_state == "Succeeded"
        got = ml_client.compute.get(name)
        assert isinstance(got, AmlCompute) and got.type == "amlcompute"
        # Azure answers the size in its own capitals (STANDARD_DS3_V2): compared as Azure compares it
        assert got.size.lower() == "standard_ds3_v2" and (got.min_instances, got.max_instances) == (0, 2)
        assert got.idle_time_before_scale_down == 120 and got.tier == "dedicated"
        assert got.id.endswith(f"/computes/{name}")

        assert name in [c.name for c in ml_client.compute.list()]
        assert name in [c.name for c in ml_client.compute.list(compute_type="AmlCompute")]
        assert name not in [c.name for c in ml_client.compute.list(compute_type="ComputeInstance")]

        got.max_instances = 3
        got.idle_time_before_scale_down = 300
        updated = ml_client.compute.begin_update(got).result()
        assert updated.max_instances == 3
        again = ml_client.compute.get(name)
        assert (again.max_instances, again.idle_time_before_scale_down) == (3, 300)
    finally:
        ml_client.compute.begin_delete(name).result()
    with pytest.raises(ResourceNotFoundError):
        ml_client.compute.get(name)


def test_unknown_compute_is_not_found(ml_client):
    with pytest.raises(ResourceNotFoundError):
        ml_client.compute.get("no-such-compute")
