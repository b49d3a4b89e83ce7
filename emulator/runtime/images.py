"""Environment images for the docker runtime, built offline through the Docker SDK.

Two kinds, both labelled ``com.amlemu.kind=environment`` (so ``amlemu system
prune`` knows them) and cached by a hash of what defines them:

- ``amlemu/job:<hash>``: an environment given as requirements (a conda file, a
  curated name, or amlemu's default). The wheels are resolved on the host and
  installed with ``--no-index`` by ``docker/job/Dockerfile`` on the base
  ``amlemu/base:bookworm`` (``docker/base/build-base.sh``).
- ``amlemu/env:<hash>``: an environment with a ``build:`` context, built from
  the user's own Dockerfile. A ``FROM`` image that is neither present locally
  nor pullable (no registry offline) is replaced by the local base image, and
  the build log says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata as md
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator import config
from emulator.errors import EmulatorError
from emulator.runtime.engine import LABEL, docker_client

Log = Callable[[str], None]

REPO = Path(__file__).resolve().parents[2]
JOB_DOCKERFILE = REPO / "docker" / "job" / "Dockerfile"
BASE_IMAGE = "amlemu/base:bookworm"
#: what amlemu's default environment holds, pinned to the host's versions
DEFAULT_PACKAGES = ("mlflow-skinny", "scikit-learn", "pandas", "skl2onnx", "onnx", "onnxruntime", "numpy", "pyyaml")
#: image label naming the FROM images the local base stood in for
STAND_IN_LABEL = f"{LABEL}.base-stands-in-for"
BUILD_LOG_TAIL = 12


@dataclass(frozen=True)
class EnvironmentImage:
    """An environment's image: its tag, whether it was already built, and which FROM images the base replaced."""

    tag: str
    cached: bool
    stands_in_for: tuple[str, ...] = ()


def environment_image(resolved: Mapping[str, Any], log: Log) -> EnvironmentImage:
    """The image a docker run of a resolved environment (see ``registry.resolve``) uses, built if missing."""
    if resolved.get("build"):
        return _context_image(resolved["build"], log)
    return _requirements_image(resolved.get("requirements"), log)


def job_image(requirements: list[str] | None, log: Log) -> str:
    """The tag of an image with ``requirements`` (None: amlemu's default environment), built if missing."""
    return _requirements_image(requirements, log).tag


def default_requirements() -> list[str]:
    return sorted(f"{name}=={md.version(name)}" for name in DEFAULT_PACKAGES)


def base_image() -> str:
    return config.setting("base_image", BASE_IMAGE)


def base_image_id() -> str:
    from docker.errors import ImageNotFound  # on first use: the Docker SDK costs ~0.1 s at start

    base = base_image()
    try:
        return docker_client().images.get(base).id
    except ImageNotFound:
        how = (
            "bash docker/base/build-base.sh"
            if base == BASE_IMAGE
            else f"AMLEMU_BASE_IMAGE={base} bash docker/base/build-base.sh"
        )
        raise EmulatorError(
            f"The offline base image '{base}' is not built yet, and no registry can be reached to pull "
            f"one. Build it with `{how}` (about a minute; `.ci/run` does it too).",
            code="BaseImageMissing",
        ) from None


# --------------------------------------------------------------------------- requirements


def job_image_tag(requirements: list[str] | None) -> str:
    reqs = sorted(requirements) if requirements else default_requirements()
    key = json.dumps([base_image_id(), JOB_DOCKERFILE.read_text(), reqs])
    return f"amlemu/job:{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _requirements_image(requirements: list[str] | None, log: Log) -> EnvironmentImage:
    reqs = sorted(requirements) if requirements else default_requirements()
    tag = job_image_tag(reqs)
    if cached := _cached(tag):
        return cached
    log(f"[amlemu] building image {tag} (first use; cached afterwards) for: {' '.join(reqs)}")
    with _scratch_dir() as context:
        wheels = context / "wheels"
        wheels.mkdir()
        shutil.copy(JOB_DOCKERFILE, context / "Dockerfile")
        (wheels / "requirements.txt").write_text("\n".join(reqs) + "\n")
        log("[amlemu] resolving wheels on the host ...")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--platform",
                "manylinux2014_x86_64",
                "--platform",
                "manylinux_2_28_x86_64",
                "--platform",
                "manylinux_2_17_x86_64",
                "--dest",
                str(wheels),
                "--disable-pip-version-check",
                "-q",
                *reqs,
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
            raise EmulatorError(
                f"Resolving wheels for the image failed: pip could not download "
                f"{', '.join(reqs)}. Check the package names and versions in the "
                f"conda_file.\npip said:\n{tail}",
                code="EnvironmentBuildFailed",
            )
        _build(tag, log, path=str(context), buildargs={"BASE": base_image_id()})
    return EnvironmentImage(tag, cached=False)


# --------------------------------------------------------------------------- build contexts


def _context_image(build: dict, log: Log) -> EnvironmentImage:
    context, dockerfile = Path(build["path"]), build["dockerfile_path"]
    if not (context / dockerfile).is_file():
        raise EmulatorError(
            f"The environment's build context {context} no longer holds {dockerfile}. "
            "Restore it, or register a new version pointing at the right folder.",
            code="EnvironmentBuildFailed",
        )
    tag = f"amlemu/env:{context_key(context, dockerfile)}"
    if cached := _cached(tag):
        if cached.stands_in_for:
            log(
                f"[amlemu] image {tag} (cached) was built on the local base image in place of "
                f"{', '.join(cached.stands_in_for)}"
            )
        return cached
    log(f"[amlemu] building image {tag} from {context / dockerfile} (first use; cached afterwards)")
    text = (context / dockerfile).read_text()
    missing = [image for image in dockerfile_bases(text) if not _obtainable(image, log)]
    labels = {}
    with _scratch_dir() as scratch:
        if missing:
            log(f"[amlemu] the local base image {base_image()} stands in for {', '.join(missing)}")
            stand_in = _stand_in_base(log)
            labels[STAND_IN_LABEL] = ",".join(missing)
            # a Dockerfile outside the context: docker-py sends it along with the context
            (scratch / "Dockerfile").write_text(stand_in_dockerfile(text, missing, stand_in))
            dockerfile = str(scratch / "Dockerfile")
        _build(tag, log, path=str(context), dockerfile=dockerfile, labels=labels)
    return EnvironmentImage(tag, cached=False, stands_in_for=tuple(missing))


def context_key(context: Path, dockerfile: str) -> str:
    """A hash of the build context's files (those ``.dockerignore`` keeps) and the Dockerfile's path."""
    from docker.utils.build import exclude_paths  # on first use: the Docker SDK costs ~0.1 s at start

    ignore = context / ".dockerignore"
    patterns = (
        [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]
        if ignore.is_file()
        else []
    )
    entries: list = [dockerfile]
    for rel in sorted(exclude_paths(str(context), patterns, dockerfile=dockerfile)):
        path = context / rel
        if path.is_symlink():
            entries.append([rel, "->", os.readlink(path)])
        elif path.is_file():
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            entries.append([rel, os.access(path, os.X_OK), digest])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


_INSTRUCTION = re.compile(r"^[ \t]*(ARG|FROM)[ \t]+(.+?)[ \t]*$", re.I | re.M)
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _from_lines(text: str) -> Iterator[tuple[int, str, str | None]]:
    """(line number, image, stage alias) for each ``FROM`` that names an image, not ``scratch`` or a stage."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    seen_from = False
    for number, line in enumerate(text.splitlines()):
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        if match[1].upper() == "ARG":
            if not seen_from and "=" in match[2]:  # global ARGs: the only ones FROM sees
                name, _, default = match[2].partition("=")
                args[name.strip()] = default.strip().strip("\"'")
            continue
        seen_from = True
        words = [w for w in match[2].split() if not w.startswith("--")]
        if not words:
            continue
        image = _VARIABLE.sub(lambda v: args.get(v[1] or v[2], v[0]), words[0])
        alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
        if image.lower() != "scratch" and image.lower() not in stages:
            yield number, image, alias
        if alias:
            stages.add(alias.lower())


def dockerfile_bases(text: str) -> list[str]:
    """The images a Dockerfile builds on (global ``ARG`` defaults expanded; stages and ``scratch`` left out)."""
    return list(dict.fromkeys(image for _, image, _ in _from_lines(text)))


def stand_in_dockerfile(text: str, missing: Iterable[str], base: str) -> str:
    """``text`` with ``base`` in place of the ``missing`` FROM images, line for line."""
    missing, lines = set(missing), text.splitlines()
    for number, image, alias in _from_lines(text):
        if image in missing:
            lines[number] = f"FROM {base}" + (f" AS {alias}" if alias else "")
    return "\n".join(lines) + "\n"


def _stand_in_base(log: Log) -> str:
    """The local base image with a ``python`` command, as the python images it replaces have."""
    base_id = base_image_id()  # or an error that says how to build the base
    tag = f"amlemu/base-python:{base_id.removeprefix('sha256:')[:16]}"
    if not _cached(tag):
        recipe = f"FROM {base_id}\nRUN command -v python >/dev/null || ln -s /usr/bin/python3 /usr/local/bin/python\n"
        # labelled a base, as the image it extends: shared by every stand-in build, never pruned
        _build(tag, log, kind="base", fileobj=io.BytesIO(recipe.encode()))
    return tag


def _obtainable(image: str, log: Log) -> bool:
    """Whether ``image`` is present locally or can be pulled now."""
    # on first use: the Docker SDK costs ~0.1 s at start
    from docker.errors import DockerException
    from docker.utils import parse_repository_tag

    client = docker_client()
    try:
        client.images.get(image)
        return True
    except DockerException:
        pass
    log(f"[amlemu] FROM {image}: not present locally; trying to pull it ...")
    try:
        repository, tag = parse_repository_tag(image)
        client.images.pull(repository, tag=tag or "latest")
        return True
    except DockerException as exc:
        reason = getattr(exc, "explanation", None) or str(exc)
        log(f"[amlemu] FROM {image} cannot be pulled ({str(reason).splitlines()[0][:160]})")
        return False


# --------------------------------------------------------------------------- shared


def _cached(tag: str) -> EnvironmentImage | None:
    from docker.errors import ImageNotFound  # on first use: the Docker SDK costs ~0.1 s at start

    try:
        image = docker_client().images.get(tag)
    except ImageNotFound:
        return None
    stand_in = (image.labels or {}).get(STAND_IN_LABEL)
    return EnvironmentImage(tag, cached=True, stands_in_for=tuple(stand_in.split(",")) if stand_in else ())


@contextlib.contextmanager
def _scratch_dir() -> Iterator[Path]:
    """A temporary folder under amlemu's cache, removed afterwards whatever happens."""
    config.cache_dir().mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="amlemu-build-", dir=config.cache_dir()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _build(
    tag: str, log: Log, *, kind: str = "environment", labels: dict[str, str] | None = None, **build_args
) -> None:
    """``docker build`` through the SDK, its log streamed as ``[build]`` lines; an error carries the log's tail."""
    from docker.errors import APIError  # on first use: the Docker SDK costs ~0.1 s at start

    lines: list[str] = []

    def failed(reason: str) -> EmulatorError:
        tail = "\n".join(lines[-BUILD_LOG_TAIL:])
        return EmulatorError(
            f"Building image {tag} failed: {reason.strip()}"
            + (f"\nLast lines of the build log:\n{tail}" if tail else ""),
            code="EnvironmentBuildFailed",
        )

    labels = {f"{LABEL}.kind": kind, f"{LABEL}.key": tag.rpartition(":")[2], **(labels or {})}
    try:
        for chunk in docker_client().api.build(
            tag=tag, rm=True, forcerm=True, decode=True, labels=labels, **build_args
        ):
            for line in (chunk.get("stream") or chunk.get("status") or "").splitlines():
                if line.strip():
                    lines.append(line.rstrip())
                    log(f"[build] {line.rstrip()}")
            if "error" in chunk:
                raise failed(chunk["error"])
    except APIError as exc:  # refused before any step ran, e.g. a Dockerfile that does not parse
        raise failed(str(exc.explanation or exc)) from None
    log(f"[amlemu] image {tag} ready")
