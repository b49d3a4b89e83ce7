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
import importlib.util
import io
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator import config
from emulator.errors import EmulatorError
from emulator.runtime import builds, installs, pins, wheelhouse
from emulator.runtime.engine import LABEL, docker_client

Log = Callable[[str], None]

#: inside the package, so that an installed amlemu (a wheel has no docker/ folder) builds images too;
#: docker/job/Dockerfile in the repository is a link to it
JOB_DOCKERFILE = Path(__file__).with_name("job.Dockerfile")
BASE_IMAGE = "amlemu/base:bookworm"
#: what amlemu's default environment holds, pinned to the host's versions (user environments get no host pins)
DEFAULT_PACKAGES = ("mlflow-skinny", "scikit-learn", "pandas", "skl2onnx", "onnx", "onnxruntime", "numpy", "pyyaml")
#: image label naming the FROM images the local base stood in for
STAND_IN_LABEL = f"{LABEL}.base-stands-in-for"
#: image label listing (JSON) what the build substituted ("python 3.9 → 3.11", a pin)
SUBSTITUTIONS_LABEL = f"{LABEL}.substitutions"
#: the job image's Python (the base image's) and the platforms its wheels may be built for (glibc 2.36)
IMAGE_PYTHON = "3.11"
IMAGE_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
    "linux_x86_64",  # a wheel built on this machine (Debian bookworm, as the base image) from a source-only package
)
BUILD_LOG_TAIL = 12


@dataclass(frozen=True)
class EnvironmentImage:
    """An environment's image: its tag, whether it was already built, and which FROM images the base replaced."""

    tag: str
    cached: bool
    stands_in_for: tuple[str, ...] = ()
    substitutions: tuple[str, ...] = ()


def environment_image(resolved: Mapping[str, Any], log: Log, extra: Sequence[str] = ()) -> EnvironmentImage:
    """The image a docker run of a resolved environment (see ``registry.resolve``) uses, built if missing;
    ``extra`` requirements (a replica's server packages) are resolved together with the environment's
    (a build context is taken as it is: a user image brings its own packages)."""
    if resolved.get("build"):
        return _context_image(resolved["build"], log)
    return _requirements_image(resolved.get("requirements"), log, extra, resolved.get("python"))


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


def job_image_tag(requirements: list[str] | None, python: str | None = None) -> str:
    reqs = sorted(requirements) if requirements else default_requirements()
    key = json.dumps([base_image_id(), JOB_DOCKERFILE.read_text(), reqs, *([python] if python else [])])
    return f"amlemu/job:{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _requirements_image(
    requirements: list[str] | None,
    log: Log,
    extra: Sequence[str] = (),
    python: str | None = None,
) -> EnvironmentImage:
    """The job image of an environment given as requirements: ``requirements`` and ``extra`` resolved
    together on the image's Python (no host pins: the user's win), or amlemu's default environment.

    The image has Python 3.11 only (the base image's): a conda file that asks for another Python gets
    3.11 and the warning ``python 3.9 → 3.11``, and its pins are fitted to 3.11 when they must be
    (:func:`emulator.runtime.pins.fit`), each substitution a warning, refused under strict pins.
    """
    reqs = sorted(set(requirements or default_requirements()) | set(extra))
    python = python if requirements else None
    tag = job_image_tag(reqs, python)
    if cached := _cached(tag):
        for line in cached.substitutions:
            log(f"[amlemu] WARNING: {line}")
        if cached.substitutions and pins.strict_pins():
            raise EmulatorError(
                f"Image {tag} of this environment was built with substitutions ({'; '.join(cached.substitutions)}), "
                "and pins are strict (AMLEMU_PINS=strict or pins: strict in .amlemu.yml). Pin versions that exist "
                f"for Python {IMAGE_PYTHON}, or drop strict pins.",
                code="EnvironmentBuildFailed",
            )
        if requirements:
            _record(requirements, python, tag, extra, cached.substitutions)
        return cached
    strict = pins.strict_pins()
    substitutions: list[str] = []

    def warn(line: str) -> None:
        substitutions.append(line)
        log(f"[amlemu] WARNING: {line}")

    log(f"[amlemu] building image {tag} (first use; cached afterwards) for: {' '.join(reqs)}")
    if python and python != IMAGE_PYTHON:
        if strict:
            raise EmulatorError(
                f"The environment asks for Python {python}, and the docker runtime's job image has Python "
                f"{IMAGE_PYTHON} only. Pins are strict (AMLEMU_PINS=strict or pins: strict in .amlemu.yml), so amlemu "
                f"does not build it on {IMAGE_PYTHON}: run it on the process runtime (AMLEMU_RUNTIME=process) with "
                f"Python {python} on this machine, ask for python={IMAGE_PYTHON}, or drop strict pins.",
                code="EnvironmentBuildFailed",
            )
        warn(f"python {python} → {IMAGE_PYTHON} (the docker runtime's job image has Python {IMAGE_PYTHON} only)")
    plan = installs.torch_plan(reqs, IMAGE_PYTHON, strict=strict)
    if "--torch-backend" in plan.uv_args and installs.names(reqs, "torch"):
        raise EmulatorError(
            "The environment needs torch, and this machine has no CPU torch wheel for Python "
            f"{IMAGE_PYTHON} in pip's find-links; amlemu never downloads a CUDA torch into an image. Put a CPU "
            "wheel of torch in a folder pip's find-links names (PIP_FIND_LINKS or pip.conf), or run the job on "
            "the process runtime (AMLEMU_RUNTIME=process).",
            code="EnvironmentBuildFailed",
        )
    for line in plan.substitutions:
        warn(line)
    _require_pip()  # once, before anything is made: the wheels are downloaded with pip
    with _scratch_dir() as context:
        wheels = context / "wheels"
        wheels.mkdir()
        shutil.copy(JOB_DOCKERFILE, context / "Dockerfile")
        wheelhouse.ensure(log)

        # a package published only as source gets its wheel built on the host
        remedies = installs.remedies(plan, IMAGE_PYTHON, strict=strict, warn=warn)
        while True:
            failure = _download(plan, wheels, context, log)
            if failure is None:
                break
            changed = False
            while remedies and not changed and not failure.network:
                changed = remedies.pop(0)()
            if not changed:
                raise _download_error(failure, plan)
        # the wheels folder holds exactly what was resolved (a CPU torch among them): no constraints needed
        (wheels / "requirements.txt").write_text("\n".join(plan.requirements) + "\n")
        labels = {SUBSTITUTIONS_LABEL: json.dumps(substitutions)} if substitutions else {}
        _build(tag, log, path=str(context), buildargs={"BASE": base_image_id()}, labels=labels)
    if requirements:
        _record(requirements, python, tag, extra, substitutions)
    return EnvironmentImage(tag, cached=False, substitutions=tuple(substitutions))


def _record(requirements: list[str], python: str | None, tag: str, extra: Sequence[str], substitutions) -> None:
    builds.record(
        requirements,
        python,
        f"docker:{tag}",
        {
            "runtime": "docker",
            "image": tag,
            "python": IMAGE_PYTHON,
            "with_serving_packages": bool(extra),
            "substitutions": list(substitutions),
        },
    )


def _download(plan: installs.Plan, wheels: Path, context: Path, log: Log) -> installs.InstallFailed | None:
    """The wheels of ``plan`` for the image's Python and platform into ``wheels``: from this machine's
    packages and pip's find-links first (offline), then with the index. A package published only as source
    gets its wheel built on the host, unless ``plan.no_build`` (the image's pip has no index to build with).
    None when done."""
    reqs, constraints = context / "requirements.in", context / "constraints.in"
    reqs.write_text("\n".join(plan.requirements) + "\n")
    constraints.write_text("\n".join(plan.constraints) + "\n")
    platforms = [arg for tag in IMAGE_PLATFORMS for arg in ("--platform", tag)]
    cmd = [
        sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--python-version", IMAGE_PYTHON,
        *platforms, "--dest", str(wheels), "--progress-bar", "off", "--find-links", str(wheelhouse.folder()),
        "--find-links", str(wheels), "-r", str(reqs), "-c", str(constraints),
    ]  # fmt: skip
    log("[amlemu] resolving wheels on the host ...")
    code, lines = installs.run([*cmd, "--no-index"], None)
    if code == 0:
        for line in lines:
            log(f"[build] {line}")
        return None
    log("[amlemu] not every wheel is among this machine's packages; asking the package index ...")
    built: set[str] = set()
    while True:
        code, lines = installs.run(cmd, lambda line: log(f"[build] {line}"))
        if code == 0:
            return None
        text = "\n".join(lines)
        network = bool(
            re.search(r"NewConnectionError|Max retries exceeded|Could not fetch URL|Connection refused", text)
        )
        source_only = re.search(r"No matching distribution found for (\S+)", text)
        if network or plan.no_build or not source_only or source_only[1] in built:
            return installs.InstallFailed(lines, network=network)
        wanted = source_only[1]
        built.add(wanted)
        log(f"[amlemu] {wanted} has no wheel for Python {IMAGE_PYTHON} on Linux: building one on the host ...")
        code, made = installs.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--progress-bar", "off", "--wheel-dir", str(wheels),
             "-c", str(constraints), wanted],
            lambda line: log(f"[build] {line}"),
        )  # fmt: skip
        if code != 0:
            return installs.InstallFailed(lines + made, network=False)


def _require_pip() -> None:
    """pip downloads the wheels of another Python and platform, which uv does not; amlemu depends on pip, but a
    virtualenv made by uv, or a distribution's Python, may still lack it."""
    if importlib.util.find_spec("pip") is None:
        raise EmulatorError(
            f"Building an image needs pip, to download the image's wheels, and this Python ({sys.executable}) has "
            f"none. Install it into this environment: `{sys.executable} -m ensurepip` or `uv pip install pip`.",
            code="EnvironmentBuildFailed",
        )


def _download_error(failure: installs.InstallFailed, plan: installs.Plan) -> EmulatorError:
    tail = "\n".join(failure.output[-BUILD_LOG_TAIL:])
    if failure.network:
        reason = (
            "no package index could be reached, and some of its packages are not among this machine's installed "
            "packages nor in pip's find-links. Connect to the index, or point pip's index-url at a reachable one."
        )
    else:
        reason = f"pip could not download wheels for Python {IMAGE_PYTHON}: {failure.cause}."
    return EmulatorError(
        f"Resolving wheels for the image failed: {reason} Requirements: {', '.join(plan.requirements)}.\n"
        f"pip said:\n{tail}",
        code="EnvironmentBuildFailed",
    )


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
    labels = image.labels or {}
    stand_in = labels.get(STAND_IN_LABEL)
    substituted = json.loads(labels.get(SUBSTITUTIONS_LABEL) or "[]")
    return EnvironmentImage(
        tag,
        cached=True,
        stands_in_for=tuple(stand_in.split(",")) if stand_in else (),
        substitutions=tuple(substituted),
    )


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
