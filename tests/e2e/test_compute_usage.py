"""``compute.list_sizes`` / ``list_usage`` and ``amlemu compute list-usage``: VM sizes and vCPU quota usage."""

from __future__ import annotations

import pytest

DSV2 = "standardDSv2Family"


def _by_name(usage) -> dict:
    return {u.name.value: u for u in usage}


def _cluster(name: str, size: str = "Standard_DS3_v2", **kwargs):
    from azure.ai.ml.entities import AmlCompute

    return AmlCompute(name=name, size=size, max_instances=4, **kwargs)


def test_list_sizes_returns_vm_size_entities_with_cores_and_memory(ml_client):
    from azure.ai.ml.entities import VmSize

    found = {s.name: s for s in ml_client.compute.list_sizes()}

    assert all(isinstance(s, VmSize) for s in found.values())
    ds3 = found["Standard_DS3_v2"]
    assert (ds3.family, ds3.v_cp_us, ds3.memory_gb, ds3.gpus) == (DSV2, 4, 14.0, 0)
    assert found["Standard_NC6s_v3"].gpus == 1
    assert "AmlCompute" in ds3.supported_compute_types.split(",")


def test_list_sizes_filters_by_compute_type_case_insensitively(ml_client):
    everything = list(ml_client.compute.list_sizes())

    assert len(list(ml_client.compute.list_sizes(compute_type="amlcompute"))) == len(everything)
    assert len(list(ml_client.compute.list_sizes(compute_type="ComputeInstance", location="eastus"))) == len(everything)
    assert list(ml_client.compute.list_sizes(compute_type="kubernetes")) == []


def test_list_usage_starts_at_zero_with_every_family_listed(ml_client):
    from azure.ai.ml.entities import Usage, UsageName
    from azure.ai.ml.entities._compute._usage import UsageUnit

    usage = list(ml_client.compute.list_usage())

    assert all(isinstance(u, Usage) and isinstance(u.name, UsageName) for u in usage)
    assert all(u.current_value == 0 and u.unit == UsageUnit.COUNT and u.limit > 0 for u in usage)
    assert all(u.aml_workspace_location == "local" for u in usage)
    family = _by_name(usage)[DSV2]
    assert family.type == "Microsoft.MachineLearningServices/vmFamily/usages"
    assert family.name.localized_value == "Standard DSv2 Family Cluster Dedicated vCPUs"
    assert {"Total Cluster Dedicated Regional vCPUs", "Clusters", "standardNCSv3Family"} <= set(_by_name(usage))


def test_list_usage_counts_the_cores_of_existing_nodes(ml_client):
    ml_client.compute.begin_create_or_update(_cluster("cpu-cluster", min_instances=2)).result()
    ml_client.compute.begin_create_or_update(_cluster("idle-cluster", size="Standard_D2s_v3")).result()

    usage = _by_name(ml_client.compute.list_usage(location="westeurope"))

    assert usage[DSV2].current_value == 8  # 2 nodes x 4 cores of Standard_DS3_v2
    assert usage["standardDSv3Family"].current_value == 0  # min_instances 0: no node, no cores
    assert usage["Total Cluster Dedicated Regional vCPUs"].current_value == 8
    assert usage["Clusters"].current_value == 2
    assert usage[DSV2].aml_workspace_location == "westeurope"

    # an idle node beyond the new minimum is released once idle past idle_time_before_scale_down (0 here)
    ml_client.compute.begin_update(_cluster("cpu-cluster", min_instances=1, idle_time_before_scale_down=0)).result()
    assert _by_name(ml_client.compute.list_usage())[DSV2].current_value == 4

    ml_client.compute.begin_delete("cpu-cluster").result()
    assert _by_name(ml_client.compute.list_usage())[DSV2].current_value == 0


def test_list_usage_low_priority_and_stopped_instances(ml_client):
    from azure.ai.ml.entities import ComputeInstance

    ml_client.compute.begin_create_or_update(
        _cluster("lp-cluster", size="Standard_F4s_v2", min_instances=1, tier="low_priority")
    ).result()
    ml_client.compute.begin_create_or_update(ComputeInstance(name="dev-box", size="Standard_DS11_v2")).result()
    usage = _by_name(ml_client.compute.list_usage())

    assert usage["Total Cluster LowPriority Regional vCPUs"].current_value == 4
    assert usage["standardFSv2Family"].current_value == 0  # low priority counts toward its own total only
    assert usage[DSV2].current_value == 2  # the running instance's one node

    ml_client.compute.begin_stop("dev-box").result()
    assert _by_name(ml_client.compute.list_usage())[DSV2].current_value == 0


def test_cli_list_usage_prints_the_sdk_usage_dump(cli, ml_client):
    cli.run(
        "compute",
        "create",
        "--name",
        "cpu-cluster",
        "--type",
        "amlcompute",
        "--size",
        "Standard_DS3_v2",
        "--min-instances",
        "2",
        "--max-instances",
        "2",
    )

    printed = cli.json("compute", "list-usage")

    assert all(
        set(u) == {"id", "aml_workspace_location", "type", "unit", "current_value", "limit", "name"} for u in printed
    )
    entry = next(u for u in printed if u["name"]["value"] == DSV2)
    assert (entry["current_value"], entry["unit"]) == (8, "Count")
    assert set(entry["name"]) == {"value", "localized_value"}
    assert printed == [
        dict(u._to_dict()) | {"name": dict(u._to_dict()["name"])} for u in ml_client.compute.list_usage()
    ]
    assert {u["aml_workspace_location"] for u in cli.json("compute", "list-usage", "--location", "eastus")} == {
        "eastus"
    }


@pytest.mark.parametrize("size, cores", [("Standard_DS3_v2", 4), ("Standard_E8s_v3", 8)])
def test_cli_list_sizes_and_sdk_agree(cli, ml_client, size, cores):
    printed = {s["name"]: s for s in cli.json("compute", "list-sizes")}
    assert printed[size]["v_cp_us"] == cores
    sdk = {s.name: s for s in ml_client.compute.list_sizes()}
    assert sdk[size].memory_gb == printed[size]["memory_gb"]
