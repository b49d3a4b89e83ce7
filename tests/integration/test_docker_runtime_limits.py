"""A node's limits are on the container from its creation, and an engine without GPUs says so clearly."""

from __future__ import annotations

import uuid

import docker
import pytest

from emulator.runtime.base import RunRequest
from emulator.runtime.docker import DockerRuntime, EngineRefused

pytestmark = pytest.mark.docker

IMAGE = "amlemu/base:bookworm"
MiB = 2**20


def run_request(tmp_path, name: str, **fields) -> RunRequest:
    return RunRequest(
        command="sleep 30",
        cwd=tmp_path,
        env={},
        log_path=tmp_path / "log.txt",
        labels={"job": name},
        image=IMAGE,
        mounts=[tmp_path],
        **fields,
    )


def containers_of(name: str):
    return docker.from_env().containers.list(all=True, ignore_removed=True, filters={"label": f"com.amlemu.job={name}"})


def test_limits_are_set_when_the_container_is_created(tmp_path):
    name = f"limits-{uuid.uuid4().hex[:8]}"
    runtime = DockerRuntime()
    handle = runtime.start(run_request(tmp_path, name, cpu_limit=1.5, memory_limit=512 * MiB))
    try:
        # as inspected at creation: nothing updated the container after it started
        config = handle.container.attrs["HostConfig"]
        assert (config["CpuQuota"], config["CpuPeriod"]) == (150_000, 100_000)
        assert config["Memory"] == config["MemorySwap"] == 512 * MiB
        assert handle.warnings == () and handle.wait(0) is None
    finally:
        handle.stop()
        handle.wait()
    assert containers_of(name) == []


def test_a_gpu_request_on_an_engine_without_a_gpu_runtime_fails_clearly(tmp_path):
    if "nvidia" in docker.from_env().info().get("Runtimes", {}):
        pytest.skip("this engine has the NVIDIA runtime: the refusal cannot happen here")
    name = f"gpus-{uuid.uuid4().hex[:8]}"
    runtime = DockerRuntime()
    with pytest.raises(EngineRefused, match=r"1 GPU \(device_requests.*NVIDIA Container Toolkit"):
        runtime.start(run_request(tmp_path, name, gpus=1))
    assert containers_of(name) == []
