"""The offline Docker recipe: base image, read-only source mount, job image from wheels.

These tests need a running Docker engine and the base image built by
``docker/base/build-base.sh``; ``.ci/run`` provides both. They fail (never skip)
when either is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import pytest
from docker.errors import BuildError, ImageNotFound, NotFound

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("AMLEMU_BASE_IMAGE", "amlemu/base:bookworm")
JOB_DOCKERFILE = REPO / "docker" / "job" / "Dockerfile"
TEST_LABELS = {"com.amlemu.test": "1"}
AML_UID = 1000
RUN_TIMEOUT_S = 120


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:  # DockerException, requests' ConnectionError, ...
        raise RuntimeError(
            f"Docker engine not reachable ({type(exc).__name__}: {exc}); start it with: dockerd &  (or run .ci/run)"
        ) from exc
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    try:
        docker_client.images.get(BASE_IMAGE)
    except ImageNotFound as exc:
        raise RuntimeError(
            f"base image {BASE_IMAGE} not found; build it with: bash docker/base/build-base.sh  (or run .ci/run)"
        ) from exc
    return BASE_IMAGE


@pytest.fixture
def run_container(docker_client):
    """Run a labelled container to completion; return (exit_code, stdout, stderr).

    Every container created here is removed at teardown, whatever happened.
    """
    created = []

    def _run(image: str, command, **kwargs) -> tuple[int, str, str]:
        kwargs.setdefault("network_mode", "none")
        container = docker_client.containers.run(image, command, detach=True, labels=dict(TEST_LABELS), **kwargs)
        created.append(container)
        status = container.wait(timeout=RUN_TIMEOUT_S)
        out = container.logs(stdout=True, stderr=False).decode()
        err = container.logs(stdout=False, stderr=True).decode()
        return status["StatusCode"], out, err

    yield _run

    for container in created:
        try:
            container.remove(force=True)
        except NotFound:
            pass


@pytest.fixture
def built_images(docker_client):
    """Tags of images a test builds; removed at teardown."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        try:
            docker_client.images.remove(tag, force=True)
        except ImageNotFound:
            pass


# ------------------------------------------------------------------------------ tests


def test_base_image_has_python_311(docker_client, base_image, run_container):
    labels = docker_client.images.get(base_image).labels or {}
    assert labels.get("com.amlemu.kind") == "base", labels

    code, out, err = run_container(base_image, ["python3", "-c", "import sys; print(sys.version)"])
    assert code == 0, err
    assert out.strip().startswith("3.11."), out


def test_emulator_package_imports_read_only_as_aml(base_image, run_container):
    src = REPO / "emulator"
    assert (src / "__init__.py").is_file(), f"{src}/__init__.py is missing"

    script = "import sys; sys.path.insert(0,'/opt/src'); import emulator; print(emulator.__name__)"
    code, out, err = run_container(
        base_image,
        ["sh", "-c", f'id -u && python3 -c "{script}"'],
        user="aml",
        environment={"PYTHONDONTWRITEBYTECODE": "1"},
        volumes={str(src): {"bind": "/opt/src/emulator", "mode": "ro"}},
    )
    assert code == 0, err
    assert out.split() == [str(AML_UID), "emulator"], (out, err)


def _download_wheels(dest: Path, *requirements: str) -> None:
    """pip download on the host: pip inside a container cannot reach the index."""
    dest.mkdir(parents=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--dest",
            str(dest),
            *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"pip download failed:\n{proc.stdout}\n{proc.stderr}"
    (dest / "requirements.txt").write_text("\n".join(requirements) + "\n")


def test_job_image_installs_wheels_offline_runs_as_aml(
    docker_client, base_image, run_container, built_images, tmp_path
):
    context = tmp_path / "context"
    _download_wheels(context / "wheels", "six")
    shutil.copy(JOB_DOCKERFILE, context / "Dockerfile")
    wheel = next((context / "wheels").glob("six-*.whl"))
    six_version = re.match(r"six-([^-]+)-", wheel.name).group(1)

    tag = f"amlemu-test/job:{uuid.uuid4().hex[:12]}"
    built_images.append(tag)
    try:
        docker_client.images.build(
            path=str(context),
            tag=tag,
            buildargs={"BASE": base_image},
            labels=dict(TEST_LABELS),
            network_mode="none",  # proves the install needs no index
            rm=True,
            forcerm=True,
        )
    except BuildError as exc:
        log = "".join(chunk.get("stream", "") or chunk.get("error", "") for chunk in exc.build_log)
        pytest.fail(f"docker build of {JOB_DOCKERFILE} failed: {exc}\n{log}")

    image = docker_client.images.get(tag)
    assert image.labels.get("com.amlemu.test") == "1"
    assert image.attrs["Config"]["User"] == "aml"

    code, out, err = run_container(tag, ["sh", "-c", 'id -u && pwd && python -c "import six; print(six.__version__)"'])
    assert code == 0, err
    assert out.split() == [str(AML_UID), "/home/aml", six_version], (out, err)
