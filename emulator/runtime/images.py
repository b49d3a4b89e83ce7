"""Job images built offline: wheels resolved on the host, installed with ``--no-index`` in the build.

The base is ``amlemu/base:bookworm`` (``docker/base/build-base.sh``); the
Dockerfile is ``docker/job/Dockerfile``. Images are tagged by a hash of what
defines them (base image id, Dockerfile, requirements), so a second job on the
same environment starts without a build.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from emulator import config
from emulator.errors import EmulatorError
from emulator.runtime.engine import LABEL, docker_client

REPO = Path(__file__).resolve().parents[2]
JOB_DOCKERFILE = REPO / "docker" / "job" / "Dockerfile"
BASE_IMAGE = "amlemu/base:bookworm"
#: what amlemu's default environment holds, pinned to the host's versions
DEFAULT_PACKAGES = ("mlflow-skinny", "scikit-learn", "pandas", "skl2onnx", "onnx", "onnxruntime", "numpy", "pyyaml")


def default_requirements() -> list[str]:
    return sorted(f"{name}=={md.version(name)}" for name in DEFAULT_PACKAGES)


def base_image_id() -> str:
    from docker.errors import ImageNotFound

    base = config.setting("base_image", BASE_IMAGE)
    try:
        return docker_client().images.get(base).id
    except ImageNotFound:
        raise EmulatorError(
            f"The offline base image '{base}' is not built yet, and no registry can be reached to pull "
            "one. Build it with `bash docker/base/build-base.sh` (about a minute; `.ci/run` does it too).",
            code="BaseImageMissing") from None


def job_image(requirements: list[str] | None, log: Callable[[str], None]) -> str:
    """The tag of an image with ``requirements`` (None: amlemu's default environment), built if missing."""
    from docker.errors import ImageNotFound

    reqs = sorted(requirements) if requirements else default_requirements()
    base_id = base_image_id()
    key = hashlib.sha256(json.dumps([base_id, JOB_DOCKERFILE.read_text(), reqs]).encode()).hexdigest()[:16]
    tag = f"amlemu/job:{key}"
    client = docker_client()
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    log(f"[amlemu] building image {tag} (first use; cached afterwards) for: {' '.join(reqs)}")
    context = Path(tempfile.mkdtemp(prefix="amlemu-build-", dir=config.cache_dir() if config.cache_dir().exists() else None))
    try:
        wheels = context / "wheels"
        wheels.mkdir()
        shutil.copy(JOB_DOCKERFILE, context / "Dockerfile")
        (wheels / "requirements.txt").write_text("\n".join(reqs) + "\n")
        log("[amlemu] resolving wheels on the host ...")
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--only-binary=:all:",
                               "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
                               "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                               "--dest", str(wheels), "--disable-pip-version-check", "-q", *reqs],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
            raise EmulatorError(f"Resolving wheels for the image failed; check the package names and "
                                f"versions.\npip said:\n{tail}", code="EnvironmentBuildFailed")
        lines: list[str] = []
        for chunk in client.api.build(path=str(context), tag=tag, buildargs={"BASE": base_id}, rm=True,
                                      forcerm=True, decode=True,
                                      labels={f"{LABEL}.kind": "environment", f"{LABEL}.key": key}):
            text = chunk.get("stream") or chunk.get("status") or ""
            if text.strip():
                lines.append(text.rstrip())
                log(f"[build] {text.rstrip()}")
            if "error" in chunk:
                tail = "\n".join(lines[-12:])
                raise EmulatorError(f"Building image {tag} failed: {chunk['error'].strip()}\n"
                                    f"Last lines of the build log:\n{tail}", code="EnvironmentBuildFailed")
    finally:
        shutil.rmtree(context, ignore_errors=True)
    log(f"[amlemu] image {tag} ready")
    return tag
