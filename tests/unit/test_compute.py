"""Compute rules without running jobs: sizes, validation, the node pool's scheduling, distribution variables,
and the JSON views against the SDK's own dump."""

from __future__ import annotations

import json
import os
import time

import pytest

from emulator.compute import distribution, nodes, service, sizes
from emulator.errors import ValidationError
from emulator.runtime.proctree import start_time


# -- sizes ----------------------------------------------------------------------------------------------------------
def test_sizes_are_case_insensitive_and_carry_cores_memory_gpus():
    assert sizes.lookup("STANDARD_DS3_V2") == sizes.VmSize("Standard_DS3_v2", "standardDSv2Family", 4, 14.0)
    gpu = sizes.lookup("Standard_NC24ads_A100_v4")
    assert (gpu.cores, gpu.memory_gb, gpu.gpus) == (24, 220.0, 1)
    assert sizes.lookup(None).name == sizes.DEFAULT_SIZE


def test_unknown_size_lists_close_matches():
    with pytest.raises(ValidationError) as info:
        sizes.lookup("Standard_DS3")
    assert "Unknown VM size 'Standard_DS3'" in info.value.message
    assert "Standard_DS3_v2" in info.value.message and "amlemu compute list-sizes" in info.value.message


def test_gpu_size_needs_gpus_here(monkeypatch):
    monkeypatch.setattr(sizes, "host_gpu_count", lambda: 0)
    sizes.check_gpus("cpu", sizes.lookup("Standard_DS3_v2"))
    with pytest.raises(ValidationError, match=r"Standard_NC6s_v3 \(1 x NVIDIA Tesla V100\).*has no GPUs"):
        sizes.check_gpus("gpu-cluster", sizes.lookup("Standard_NC6s_v3"))


def test_container_limits_are_capped_at_this_machine():
    limits = sizes.container_limits(sizes.lookup("Standard_DS5_v2"))
    assert limits["cpu_quota"] <= (os.cpu_count() or 1) * limits["cpu_period"]
    assert limits["mem_limit"] <= 56 * 2**30 and limits["memswap_limit"] == limits["mem_limit"]


# -- validation -----------------------------------------------------------------------------------------------------
def cluster(store, name="cpu-cluster", **fields):
    return service.create_or_update(store, {"name": name, "type": "amlcompute", **fields})


def test_min_above_max_rejected_and_nothing_recorded(store):
    with pytest.raises(ValidationError, match=r"min_instances \(3\) is greater than max_instances \(2\)"):
        cluster(store, min_instances=3, max_instances=2)
    assert service.list_computes(store) == []


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"size": "Standard_Nope"}, "Unknown VM size"),
        ({"max_instances": 0}, "max_instances must be at least 1"),
        ({"min_instances": -1}, "min_instances must be a whole number"),
        ({"tier": "spot"}, "tier 'spot'"),
        ({"colour": "blue"}, "Unknown compute cluster field"),
    ],
)
def test_bad_cluster_specs(store, fields, message):
    with pytest.raises(ValidationError, match=message):
        cluster(store, **fields)


def test_bad_names_and_types(store):
    with pytest.raises(ValidationError, match="2-16"):
        cluster(store, name="a-cluster-name-far-too-long")
    with pytest.raises(Exception, match="not emulated yet"):
        service.create_or_update(store, {"name": "vm", "type": "virtualmachine"})
    cluster(store, name="taken")
    with pytest.raises(ValidationError, match=r"already exists \(type amlcompute\)"):
        service.create_or_update(store, {"name": "taken", "type": "computeinstance"})


def test_cluster_size_cannot_change_but_scale_settings_can(store):
    cluster(store, max_instances=2)
    with pytest.raises(ValidationError, match="cannot be changed"):
        cluster(store, size="Standard_F4s_v2")
    assert cluster(store, max_instances=8)["max_instances"] == 8


def test_instance_life_cycle_is_recorded(store):
    service.create_or_update(store, {"name": "dev-box", "type": "computeinstance", "size": "Standard_DS3_v2"})
    with pytest.raises(ValidationError, match="is Running; start needs it Stopped"):
        service.start(store, "dev-box")
    service.stop(store, "dev-box")
    assert service.list_nodes(store, "dev-box") == []
    record = service.start(store, "dev-box")
    record = service.restart(store, "dev-box")
    states = [s["state"] for s in record["state_history"]]
    assert states == ["Creating", "Running", "Stopping", "Stopped", "Starting", "Running", "Restarting", "Running"]
    assert record["last_operation"]["operation_name"] == "Restart"
    assert [n["node_state"] for n in service.list_nodes(store, "dev-box")] == ["idle"]
    with pytest.raises(ValidationError, match="applies to compute instances"):
        cluster(store) and service.stop(store, "cpu-cluster")


# -- the node pool -----------------------------------------------------------------------------------------------
def queue_job(store, name, compute="cpu-cluster", count=1, status="Queued", alive=True):
    """A job record waiting on ``compute`` (its 'supervisor' is this test process when alive)."""
    pid = os.getpid() if alive else 2**22 + 1
    store.insert_job(
        {
            "name": name,
            "type": "command",
            "experiment_name": "e",
            "status": status,
            "spec": {"compute": compute, "resources": {"instance_count": count}},
            "created_at": time.time(),
            "pid": pid,
            "pid_start": start_time(os.getpid()) if alive else "0",
        }
    )


def holders(store, compute="cpu-cluster"):
    return sorted(n.get("current_job_name") for n in service.list_nodes(store, compute) if n.get("current_job_name"))


def test_min_instances_nodes_exist_from_creation(store):
    cluster(store, min_instances=2, max_instances=3)
    listed = service.list_nodes(store, "cpu-cluster")
    assert [n["node_state"] for n in listed] == ["idle", "idle"]
    assert all(n["node_id"].startswith("tvmps_") and n["private_ip_address"] == "127.0.0.1" for n in listed)


def test_grants_are_fifo_and_never_overtake(store):
    cluster(store, max_instances=2, idle_time_before_scale_down=600)
    queue_job(store, "a")
    queue_job(store, "b", count=2)  # needs both nodes: waits for a
    queue_job(store, "c")  # would fit beside a, but must not overtake b
    assert holders(store) == ["a"]
    store.update_job("a", status="Completed")
    assert holders(store) == ["b", "b"]
    store.update_job("b", status="Completed")
    assert holders(store) == ["c"]
    started = {j["name"]: j["started_at"] for j in store.list_jobs()}
    assert started["a"] <= started["b"] <= started["c"]


def test_nodes_of_lost_jobs_are_freed(store):
    cluster(store, max_instances=1)
    queue_job(store, "ghost", alive=False)  # its supervisor is gone
    queue_job(store, "next")
    assert holders(store) == ["next"]


def test_node_of_a_holder_whose_supervisor_died_goes_to_the_next_job(store):
    cluster(store, max_instances=1)
    queue_job(store, "a")
    queue_job(store, "b")
    assert holders(store) == ["a"]
    store.update_job("a", status="Running", pid=2**22 + 1, pid_start="0")  # its supervisor died
    assert holders(store) == ["b"]


def test_idle_nodes_scale_down_to_min_and_busy_ones_stay(store):
    cluster(store, min_instances=1, max_instances=3, idle_time_before_scale_down=0)
    queue_job(store, "a")
    queue_job(store, "b")
    queue_job(store, "c")
    assert holders(store) == ["a", "b", "c"]
    store.update_job("b", status="Completed")
    store.update_job("c", status="Completed")
    listed = service.list_nodes(store, "cpu-cluster")
    assert [(n["node_state"], n.get("current_job_name")) for n in listed] == [("preparing", "a")]
    store.update_job("a", status="Completed")
    assert [n["node_state"] for n in service.list_nodes(store, "cpu-cluster")] == ["idle"]


def test_released_lost_node_is_replaced(store):
    cluster(store, min_instances=1, max_instances=1)
    queue_job(store, "a")
    nodes.sync(store, "cpu-cluster")
    (node,) = nodes.held_by(store, "a")
    store.update_job("a", status="Failed")
    nodes.release(store, "cpu-cluster", "a", lost=(node["node_id"],))
    (fresh,) = service.list_nodes(store, "cpu-cluster")
    assert fresh["node_id"] != node["node_id"] and fresh["node_state"] == "idle"


def test_placement_rules(store, monkeypatch):
    monkeypatch.setattr(sizes, "host_gpu_count", lambda: 0)
    cluster(store, max_instances=2)
    service.create_or_update(store, {"name": "gpu-cluster", "type": "amlcompute", "size": "Standard_NC6s_v3"})
    service.create_or_update(store, {"name": "dev-box", "type": "computeinstance"})
    assert service.placement(store, None, 1) is None
    with pytest.raises(ValidationError, match="multi-node job runs on a compute cluster"):
        service.placement(store, None, 2)
    with pytest.raises(ValidationError, match="max_instances 2"):
        service.placement(store, "cpu-cluster", 3)
    with pytest.raises(ValidationError, match="has no GPUs"):
        service.placement(store, "gpu-cluster", 1)
    with pytest.raises(ValidationError, match="one node"):
        service.placement(store, "dev-box", 2)
    service.stop(store, "dev-box")
    with pytest.raises(ValidationError, match="amlemu compute start --name dev-box"):
        service.placement(store, "dev-box", 1)


# -- distribution -------------------------------------------------------------------------------------------------
def test_pytorch_variables():
    count, dist = distribution.normalize({"type": "PyTorch", "process_count_per_instance": 2}, 2)
    processes = distribution.plan(count, dist)
    assert [(p.rank, p.node_index) for p in processes] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    env = processes[3].env
    assert {
        k: env[k]
        for k in (
            "RANK",
            "LOCAL_RANK",
            "WORLD_SIZE",
            "LOCAL_WORLD_SIZE",
            "NODE_RANK",
            "MASTER_ADDR",
            "AZUREML_NODE_COUNT",
        )
    } == {
        "RANK": "3",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "4",
        "LOCAL_WORLD_SIZE": "2",
        "NODE_RANK": "1",
        "MASTER_ADDR": "127.0.0.1",
        "AZUREML_NODE_COUNT": "2",
    }
    assert len({p.env["MASTER_PORT"] for p in processes}) == 1
    assert env["AZ_BATCH_MASTER_NODE"] == f"127.0.0.1:{env['MASTER_PORT']}"


def test_mpi_variables():
    processes = distribution.plan(*distribution.normalize({"type": "mpi", "process_count_per_instance": 3}, 1))
    assert [p.env["OMPI_COMM_WORLD_RANK"] for p in processes] == ["0", "1", "2"]
    assert {p.env["OMPI_COMM_WORLD_SIZE"] for p in processes} == {"3"}
    assert [p.env["OMPI_COMM_WORLD_LOCAL_RANK"] for p in processes] == ["0", "1", "2"]


def test_tensorflow_config():
    processes = distribution.plan(
        *distribution.normalize({"type": "tensorflow", "worker_count": 2, "parameter_server_count": 1}, 2)
    )
    configs = [json.loads(p.env["TF_CONFIG"]) for p in processes]
    assert [c["task"] for c in configs] == [
        {"type": "ps", "index": 0},
        {"type": "worker", "index": 0},
        {"type": "worker", "index": 1},
    ]
    assert len(configs[0]["cluster"]["worker"]) == 2 and len(configs[0]["cluster"]["ps"]) == 1
    assert [p.node_index for p in processes] == [0, 1, 0]


def test_single_node_job_gets_no_extra_variables():
    assert distribution.plan(1, None)[0].env == {}


@pytest.mark.parametrize(
    "dist, count, message",
    [
        ({"type": "horovod"}, 1, "distribution type 'horovod'"),
        ({"type": "pytorch", "process_count_per_instance": 0}, 1, "process_count_per_instance must be"),
        ({"type": "mpi", "workers": 2}, 1, "Unknown mpi distribution field"),
        (None, 0, "instance_count must be"),
    ],
)
def test_bad_distributions(dist, count, message):
    with pytest.raises(ValidationError, match=message):
        distribution.normalize(dist, count)


# -- views ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [
        {
            "name": "cpu-cluster",
            "type": "amlcompute",
            "size": "Standard_DS3_v2",
            "min_instances": 0,
            "max_instances": 4,
            "idle_time_before_scale_down": 120,
        },
        {"name": "dev-box", "type": "computeinstance", "size": "Standard_DS3_v2"},
        {"name": "k8s", "type": "kubernetes", "namespace": "azureml"},
    ],
)
def test_cli_view_is_the_sdk_entity_dump(store, spec):
    from backends.compute_entities import record_to_compute
    from emulator.compute.views import compute_view

    record = service.create_or_update(store, spec)
    view = compute_view(store, record)
    dumped = json.loads(json.dumps(record_to_compute(store, record)._to_dict()))
    extras = ("resourceGroup", "state_history", "concurrent_jobs")  # amlemu's, not in the SDK entity
    assert {k: v for k, v in view.items() if k not in extras} == dumped


def test_find_mpirun_prefers_the_environment_s_own(tmp_path, monkeypatch):
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "mpirun").write_text("#!/bin/sh\n")
    (tmp_path / "path").mkdir()
    on_path = tmp_path / "path" / "mpirun"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    assert distribution.find_mpirun(tmp_path / "env") == str(tmp_path / "env" / "mpirun")
    assert distribution.find_mpirun(tmp_path / "nowhere") == str(on_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert distribution.find_mpirun(tmp_path / "nowhere") is None  # the processes then start directly


def test_mpirun_command_starts_every_rank_over_loopback_with_its_own_log(tmp_path):
    import shlex

    argv = shlex.split(distribution.mpirun_command("/opt/mpirun", 4, "python train.py --lr 0.1", tmp_path))
    assert argv[:3] == ["/opt/mpirun", "-n", "4"]
    assert argv[argv.index("btl_tcp_if_include") + 1] == "lo"
    assert argv[-3:-1] == ["/bin/bash", "-c"]
    assert argv[-1] == (
        f'exec >> {tmp_path}/std_log_process_"$OMPI_COMM_WORLD_RANK".txt 2>&1; python train.py --lr 0.1'
    )
