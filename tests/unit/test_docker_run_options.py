"""How the docker runtime turns a run request into container options: limits and GPUs set at creation."""

from __future__ import annotations

import os

import docker
import pytest

from emulator import config
from emulator.compute import sizes
from emulator.errors import ValidationError
from emulator.runtime.base import RunRequest
from emulator.runtime.docker import DockerRuntime, EngineRefused, check_limits, run_options

LIMIT_KEYS = {"cpu_period", "cpu_quota", "nano_cpus", "mem_limit", "memswap_limit", "device_requests"}
GiB = 2**30


def request(tmp_path, **fields) -> RunRequest:
    return RunRequest(
        command="echo hi", cwd=tmp_path, env={"A": "1"}, log_path=tmp_path / "log.txt", labels={"job": "j1"}, **fields
    )


def test_a_plain_request_gets_the_off_cluster_limits_and_no_more(tmp_path, monkeypatch):
    monkeypatch.delenv("AMLEMU_CONTAINER_MEMORY", raising=False)
    monkeypatch.delenv("AMLEMU_CONTAINER_PIDS", raising=False)
    monkeypatch.setenv("AMLEMU_TEST_SECRET_XYZ", "from-the-caller")
    options = run_options(request(tmp_path))
    assert LIMIT_KEYS & options.keys() == {"mem_limit"} and options["mem_limit"] == 4 * GiB
    assert options["pids_limit"] == 4096
    assert options["cap_drop"] == ["ALL"] and options["security_opt"] == ["no-new-privileges"]
    assert options["user"] == f"{os.getuid()}:{os.getgid()}"
    assert options["network_mode"] == "none"
    # the request's environment only (HOME and the user's name set for the image), never the caller's shell
    assert options["environment"].pop("A") == "1" and options["environment"].pop("HOME") == "/tmp"
    assert set(options["environment"]) == {"USER", "LOGNAME"}
    home = str(config.home().resolve())  # system prune touches only this AMLEMU_HOME's containers
    assert options["labels"] == {"com.amlemu.kind": "job", "com.amlemu.job": "j1", "com.amlemu.home": home}
    assert options["command"][-1].endswith("2>&1; echo hi") and options["working_dir"] == str(tmp_path)


def test_container_limits_are_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("AMLEMU_CONTAINER_MEMORY", "512m")
    monkeypatch.setenv("AMLEMU_CONTAINER_PIDS", "0")
    options = run_options(request(tmp_path))
    assert options["mem_limit"] == 512 * 2**20 and "pids_limit" not in options
    assert run_options(request(tmp_path, memory_limit=GiB))["mem_limit"] == GiB  # a node's size comes first
    monkeypatch.setenv("AMLEMU_CONTAINER_MEMORY", "0")
    assert "mem_limit" not in run_options(request(tmp_path))
    monkeypatch.setenv("AMLEMU_CONTAINER_MEMORY", "lots")
    with pytest.raises(ValidationError, match="AMLEMU_CONTAINER_MEMORY must be bytes or a size such as 512m"):
        run_options(request(tmp_path))


def test_cores_and_memory_become_cpu_quota_and_mem_limit(tmp_path):
    options = run_options(request(tmp_path, cpu_limit=1.5, memory_limit=2 * GiB))
    assert (options["cpu_period"], options["cpu_quota"]) == (100_000, 150_000)
    assert options["mem_limit"] == options["memswap_limit"] == 2 * GiB  # an Azure node has no swap
    assert "device_requests" not in options


def test_a_gpu_size_passes_its_gpus_through_when_this_machine_has_them(tmp_path, monkeypatch):
    monkeypatch.setattr(sizes, "host_gpu_count", lambda: 2)
    size = sizes.lookup("Standard_NC12s_v3")  # 2 x V100
    sizes.check_gpus("gpu-cluster", size)
    limits = sizes.node_limits(size)
    assert limits["gpus"] == 2 and limits["cpu_limit"] > 0 and limits["memory_limit"] > 0
    (device,) = run_options(request(tmp_path, **limits))["device_requests"]
    assert isinstance(device, docker.types.DeviceRequest)
    assert (device.count, device.capabilities) == (2, [["gpu"]])
    assert "device_requests" not in sizes.container_limits(sizes.lookup("Standard_DS3_v2"))


def test_a_gpu_size_on_a_machine_with_fewer_gpus_is_refused_clearly(monkeypatch):
    monkeypatch.setattr(sizes, "host_gpu_count", lambda: 1)
    with pytest.raises(ValidationError) as info:
        sizes.check_gpus("gpu-cluster", sizes.lookup("Standard_NC12s_v3"))
    message = info.value.message
    assert "Standard_NC12s_v3 (2 x NVIDIA Tesla V100)" in message and "this machine has 1 GPU," in message
    assert "Use a CPU size" in message and "AMLEMU_BACKEND=azure" in message


def test_limits_the_engine_dropped_fail_and_dropped_swap_warns(tmp_path):
    limited = request(tmp_path, cpu_limit=2, memory_limit=GiB)
    kept = {"CpuQuota": 200_000, "CpuPeriod": 100_000, "Memory": GiB, "MemorySwap": GiB}
    assert check_limits(limited, kept) == []
    assert check_limits(request(tmp_path), {"CpuQuota": 0, "Memory": 0, "MemorySwap": 0}) == []
    (warning,) = check_limits(limited, {**kept, "MemorySwap": -1})
    assert "swap" in warning and "memswap_limit" in warning
    with pytest.raises(
        EngineRefused,
        match=r"dropped the container's mem_limit \(1.0 GiB\).*cgroup.*"
        r"AMLEMU_RUNTIME=process",
    ):
        check_limits(limited, {**kept, "Memory": 0, "MemorySwap": -1})
    with pytest.raises(EngineRefused, match=r"cpu_quota \(2 cores\)"):
        check_limits(limited, {**kept, "CpuQuota": 0})


class FakeContainer:
    """Stands for a created container whose engine has no GPU runtime."""

    def __init__(self, host_config):
        self.attrs = {"HostConfig": host_config}
        self.removed = False

    def start(self):
        raise docker.errors.APIError(
            "500 Server Error", explanation='could not select device driver "" with capabilities: [[gpu]]'
        )

    def remove(self, force=False):
        self.removed = True


def test_an_engine_without_a_gpu_runtime_fails_the_run_and_leaves_no_container(tmp_path, monkeypatch):
    created = {}

    class Containers:
        def create(self, image, **options):
            created.update(options, container=FakeContainer({"DeviceRequests": options["device_requests"]}))
            return created["container"]

    class Client:
        containers = Containers()

    monkeypatch.setattr("emulator.runtime.docker.docker_client", Client)
    runtime = DockerRuntime()
    with pytest.raises(EngineRefused) as info:
        runtime.start(request(tmp_path, gpus=1, image="amlemu/job:test"))
    assert "1 GPU (device_requests, as `docker run --gpus 1`)" in info.value.message
    assert "could not select device driver" in info.value.message
    assert "NVIDIA Container Toolkit" in info.value.message and "AMLEMU_RUNTIME=process" in info.value.message
    assert created["container"].removed
