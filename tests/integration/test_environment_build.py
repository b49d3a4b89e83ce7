"""Environments built for the docker runtime: ``build:`` contexts, ``amlemu environment build``, bad input.

The docker tests fail (never skip) when no engine answers. Every build context
holds a fresh token, so its image is new to the engine; the test removes it.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import docker
import pytest
from docker.errors import ImageNotFound

from emulator.runtime.images import job_image_tag
from tests.e2e.test_cli_bad_input import assert_rejected
from tests.e2e.test_cli_jobs import wait_status, write

docker_test = pytest.mark.docker


@pytest.fixture
def engine():
    client = docker.from_env()
    client.ping()  # fails (never skips) without an engine
    return client


@pytest.fixture
def docker_cli(cli, engine, monkeypatch):
    monkeypatch.setenv("AMLEMU_RUNTIME", "docker")
    return cli


@pytest.fixture
def env_images(engine):
    """Tags the test built; removed at teardown."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        try:
            engine.images.remove(tag, force=True)
        except ImageNotFound:
            pass


def register_context(cli, tmp_path: Path, name: str, dockerfile: str) -> str:
    """A build context with ``dockerfile`` and a token file, registered as environment ``name``; the token."""
    token = uuid.uuid4().hex
    write(tmp_path / name / "Dockerfile", dockerfile)
    write(tmp_path / name / "token.txt", token + "\n")
    cli.json("environment", "create", "--name", name, "--build-context", str(tmp_path / name))
    return token


def job_log(cli, name: str) -> str:
    return (cli.home / "workspaces/default/jobs" / name / "artifacts/user_logs/std_log.txt").read_text()


def build_summary(cli, *args: str) -> dict:
    return json.loads(cli.run("environment", "build", *args).stdout)


def assert_build_fails(cli, name: str, *needles: str) -> str:
    """``environment build`` exits 1 with an error (after any progress lines) that holds ``needles``."""
    proc = cli.run("environment", "build", "--name", name, check=False)
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
    error = proc.stderr[proc.stderr.index("ERROR: ") :]
    for needle in needles:
        assert needle in error, f"{needle!r} not in {error!r}"
    return error


def leftovers(cli) -> list[Path]:
    cache = cli.home / "cache"
    return sorted(cache.glob("amlemu-build-*")) if cache.is_dir() else []


@docker_test
def test_build_context_job_runs_in_its_image_and_is_cached(docker_cli, tmp_path, env_images):
    token = register_context(
        docker_cli,
        tmp_path,
        "ctx-env",
        "FROM python:3.11-slim\nCOPY token.txt /opt/token.txt\nRUN echo baked-in > /opt/baked.txt\n",
    )
    shown = docker_cli.json("environment", "show", "--name", "ctx-env")
    assert "python:3.11-slim" in shown["local_runtime"] and "amlemu/base:bookworm" in shown["local_runtime"]
    spec = write(
        tmp_path / "job.yml",
        (
            "command: >-\n  python -c \"import sys; print('python', sys.version_info[0])\";\n"
            "  cat /opt/token.txt /opt/baked.txt; echo run $AZUREML_RUN_ID; id -u;\n"
            "  echo result > ${{outputs.out}}/result.txt; mkdir -p outputs; echo kept > outputs/kept.txt\n"
            "environment: azureml:ctx-env@latest\noutputs:\n  out: {type: uri_folder}\n"
        ),
    )
    first = docker_cli.json("job", "create", "--file", str(spec), "--stream")
    log = job_log(docker_cli, first["name"])
    env_images.extend(line.split()[3] for line in log.splitlines() if line.startswith("[amlemu] building image"))
    assert first["status"] == "Completed", log
    assert "cannot be pulled" in log and "stands in for python:3.11-slim" in log
    assert "[build] Step" in log and "[build] Successfully tagged amlemu/env:" in log
    assert f"python 3\n{token}\nbaked-in\nrun {first['name']}\n{os.getuid()}\n" in log  # as the invoking user
    assert "outputs/kept.txt" in first["artifacts"]
    job_dir = docker_cli.home / "workspaces/default/jobs" / first["name"]
    assert (job_dir / "outputs/out/result.txt").read_text() == "result\n"
    assert docker_cli.json("job", "show", "--name", first["name"])["status"] == "Completed"

    summary = build_summary(docker_cli, "--name", "ctx-env")
    assert summary["runtime"] == "docker" and summary["cached"] is True
    assert [summary["image"]] == env_images and summary["base_stands_in_for"] == ["python:3.11-slim"]
    second = docker_cli.json("job", "create", "--file", str(spec), "--stream")
    assert second["status"] == "Completed"
    assert "[build]" not in job_log(docker_cli, second["name"]), "the second job must reuse the image"
    image = docker.from_env().images.get(summary["image"])
    assert image.labels["com.amlemu.kind"] == "environment"
    assert leftovers(docker_cli) == []


@docker_test
def test_environment_build_builds_then_reports_cached(docker_cli, tmp_path, env_images):
    register_context(docker_cli, tmp_path, "small", "FROM python:3.11-slim\nCOPY token.txt /opt/\n")
    proc = docker_cli.run("environment", "build", "--name", "small", "--version", "1")
    first = json.loads(proc.stdout)
    env_images.append(first["image"])
    assert first["cached"] is False and first["image"].startswith("amlemu/env:")
    assert first["environment"] == "azureml:small:1" and isinstance(first["seconds"], float)
    assert "[build] Step 1/" in proc.stderr and "stands in for python:3.11-slim" in proc.stderr
    again = docker_cli.run("environment", "build", "--name", "small")
    assert json.loads(again.stdout)["cached"] is True and json.loads(again.stdout)["image"] == first["image"]
    assert "[build]" not in again.stderr


@docker_test
def test_dockerfile_that_fails_fails_the_job_with_the_build_log_tail(docker_cli, tmp_path, engine):
    register_context(docker_cli, tmp_path, "broken", "FROM python:3.11-slim\nRUN echo about-to-fail && exit 7\n")
    spec = write(tmp_path / "job.yml", "command: echo never\nenvironment: azureml:broken:1\n")
    job = wait_status(docker_cli, docker_cli.json("job", "create", "--file", str(spec))["name"], timeout=180)
    message = job["error"]["message"]
    assert job["status"] == "Failed"
    assert "returned a non-zero code: 7" in message and "Last lines of the build log" in message
    assert "about-to-fail" in message, "the build's own output must be in the error"
    error = assert_build_fails(
        docker_cli, "broken", "EnvironmentBuildFailed", "returned a non-zero code: 7", "about-to-fail"
    )
    tag = error.split("Building image ")[1].split()[0]
    with pytest.raises(ImageNotFound):
        engine.images.get(tag)
    assert leftovers(docker_cli) == []


@docker_test
def test_dockerfile_that_does_not_parse_is_refused_with_its_line(docker_cli, tmp_path):
    register_context(docker_cli, tmp_path, "typo", "FROM python:3.11-slim\nRUNN echo hi\n")
    assert_build_fails(docker_cli, "typo", "EnvironmentBuildFailed", "line 2", "RUNN")


@docker_test
def test_conda_package_that_does_not_exist_on_docker(docker_cli, tmp_path, engine):
    write(tmp_path / "conda.yml", "dependencies:\n  - pip:\n    - amlemu-no-such-package-xyz==1.0\n")
    docker_cli.json(
        "environment",
        "create",
        "--name",
        "nopkg",
        "--image",
        "mcr.microsoft.com/azureml/x",
        "--conda-file",
        str(tmp_path / "conda.yml"),
    )
    spec = write(tmp_path / "job.yml", "command: echo never\nenvironment: azureml:nopkg@latest\n")
    job = wait_status(docker_cli, docker_cli.json("job", "create", "--file", str(spec))["name"], timeout=180)
    assert job["status"] == "Failed"
    assert "'amlemu-no-such-package-xyz' is not on the package index" in job["error"]["message"]
    assert "Check the package names" not in job["error"]["message"]
    assert_build_fails(docker_cli, "nopkg", "'amlemu-no-such-package-xyz' is not on the package index")
    with pytest.raises(ImageNotFound):
        engine.images.get(job_image_tag(["amlemu-no-such-package-xyz==1.0"]))
    assert leftovers(docker_cli) == [], "the wheel folder must be removed"


@docker_test
def test_unknown_image_without_a_local_base_says_how_to_build_it(docker_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("AMLEMU_BASE_IMAGE", "amlemu/base:nope")
    docker_cli.json("environment", "create", "--name", "imgonly", "--image", "mcr.microsoft.com/azureml/nope:1")
    spec = write(tmp_path / "job.yml", "command: echo never\nenvironment: azureml:imgonly@latest\n")
    job = wait_status(docker_cli, docker_cli.json("job", "create", "--file", str(spec))["name"], timeout=120)
    assert job["status"] == "Failed"
    assert "amlemu/base:nope" in job["error"]["message"] and "build-base.sh" in job["error"]["message"]
    register_context(docker_cli, tmp_path, "ctx", "FROM mcr.microsoft.com/azureml/nope:1\nRUN true\n")
    assert_build_fails(
        docker_cli, "ctx", "BaseImageMissing", "AMLEMU_BASE_IMAGE=amlemu/base:nope bash docker/base/build-base.sh"
    )
    assert leftovers(docker_cli) == []


def test_environment_build_without_an_engine_says_how_to_start_one(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setenv("AMLEMU_RUNTIME", "docker")
    register_context(cli, tmp_path, "ctx", "FROM python:3.11-slim\n")
    assert_build_fails(cli, "ctx", "No Docker engine answers", "dockerd", "AMLEMU_RUNTIME=process")


def test_environment_build_on_the_process_runtime(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("AMLEMU_RUNTIME", "process")
    register_context(cli, tmp_path, "ctx", "FROM python:3.11-slim\n")
    summary = build_summary(cli, "--name", "ctx")
    assert summary["runtime"] == "process" and summary["cached"] is True and "image" not in summary
    assert "process runtime uses the local default environment" in summary["local_runtime"]
    assert_rejected(cli, ["environment", "build", "--name", "ghost"], "ghost", "not found")
    assert_rejected(cli, ["environment", "build", "--name", "ctx", "--version", "9"], "ctx")


def test_image_and_build_together_are_refused(cli, tmp_path):
    write(tmp_path / "ctx" / "Dockerfile", "FROM python:3.11-slim\n")
    assert_rejected(
        cli,
        ["environment", "create", "--name", "both", "--image", "python:3.11", "--build-context", str(tmp_path / "ctx")],
        "'image' or 'build'",
        "not both",
    )


@docker_test
def test_another_python_in_a_container_is_substituted_with_warnings(docker_cli, tmp_path, engine, env_images):
    """The job image has Python 3.11 only: python=3.9 gets 3.11, numpy 1.21.6 (no wheel for 3.11) the nearest
    version that has one, each a warning in the job log, kept on the image for the next job."""
    write(tmp_path / "conda.yml", "dependencies:\n  - python=3.9\n  - pip\n  - pip:\n    - numpy==1.21.6\n")
    docker_cli.json(
        "environment", "create", "--name", "py39", "--image", "mcr.microsoft.com/azureml/x",
        "--conda-file", str(tmp_path / "conda.yml"),
    )  # fmt: skip
    spec = write(
        tmp_path / "job.yml",
        "command: python -c \"import numpy, sys; print('numpy', numpy.__version__, sys.version_info[:2])\"\n"
        "environment: azureml:py39@latest\n",
    )
    first = docker_cli.json("job", "create", "--file", str(spec), "--stream")
    log = job_log(docker_cli, first["name"])
    env_images.extend(line.split()[3] for line in log.splitlines() if line.startswith("[amlemu] building image"))
    assert first["status"] == "Completed", log
    assert "[amlemu] WARNING: python 3.9 → 3.11 (the docker runtime's job image has Python 3.11 only)" in log
    assert "[amlemu] WARNING: numpy 1.21.6 → 1.23.2" in log and "numpy 1.23.2 (3, 11)" in log
    second = docker_cli.json("job", "create", "--file", str(spec), "--stream")
    again = job_log(docker_cli, second["name"])
    assert "[build]" not in again and "[amlemu] WARNING: numpy 1.21.6 → 1.23.2" in again
    assert leftovers(docker_cli) == []
