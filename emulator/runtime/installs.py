"""Installing an environment's packages: uv first, offline first; pip as the fallback.

One attempt is two runs of the installer at most:

1. *offline* (``uv pip install --offline``): uv's shared wheel cache and the wheelhouse of this
   machine's own packages (:mod:`emulator.runtime.wheelhouse`) only. Fast, needs no index, and an
   unpinned package gets the version this machine already has.
2. *with the index*, when something was not there: the package index the machine is configured
   with (uv's ``UV_*`` settings, else pip's, through :func:`emulator.runtime.pins.package_indexes`),
   the same find-links (pip's included: uv does not read pip's configuration), the wheelhouse.

torch never comes from the index as a CUDA build (gigabytes, and no GPU here): a CPU torch wheel in
the configured find-links is the only torch a build may take (a constraint, so a package that
depends on torch gets it too), and without one uv's own routing to PyTorch's CPU builds
(``--torch-backend cpu``) does. A pin on another torch is replaced by that CPU build, with a
warning (refused under strict pins).

Progress goes to the caller's ``log`` as ``[build]`` lines ("Resolved 40 packages", "Downloading
numpy", "Installed 40 packages") and to the build log file; on a terminal, uv draws its progress
bars there instead (through a pseudo-terminal, so its lines still reach the build log).
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from emulator import config
from emulator.errors import EmulatorError, ValidationError
from emulator.runtime import pins, wheelhouse

Log = Callable[[str], None]

LOG_TAIL = 15  # lines of the installer's output an error carries
CAUSE_CHARS = 700  # the most of the installer's reason an error's first paragraph quotes
# Azure's packages that may not install here (pins for another Python, heavy native closures),
# and what stands in for each when they cannot: tracking stays local through MLFLOW_TRACKING_URI
AZURE_STAND_INS: dict[str, str | None] = {
    "azureml-mlflow": "mlflow-skinny",
    "azureml-defaults": "azureml-inference-server-http",
    "azureml-core": None,
    "azureml-telemetry": None,
    "azureml-dataset-runtime": None,
}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NETWORK = re.compile(
    r"Failed to fetch|error sending request|tcp connect error|dns error|Connection refused|"
    r"Network is unreachable|timed out|Could not connect|NewConnectionError|Max retries exceeded",
    re.I,
)
_NOT_CACHED = re.compile(r"(?:Because |and |, )([A-Za-z0-9][\w.\-]*) was not found in the cache")
_NOT_ON_INDEX = re.compile(r"([A-Za-z0-9][\w.\-]*) was not found in the package registry")
_NO_VERSION = re.compile(r"there is no version of ([A-Za-z0-9][\w.\-]*)")
_PIP_NOT_FOUND = re.compile(r"No matching distribution found for ([A-Za-z0-9][\w.\-]*)")


class InstallFailed(Exception):
    """An installer run failed; ``output`` is what it said, ``network`` whether the index was unreachable."""

    def __init__(self, output: list[str], *, network: bool, offline_missing: list[str] | None = None):
        super().__init__("\n".join(output[-LOG_TAIL:]))
        self.output = output
        self.network = network
        self.offline_missing = offline_missing or []

    @property
    def cause(self) -> str:
        """The installer's own reason, in one paragraph: uv's ``cause:`` chain, or pip's ``ERROR:`` lines."""
        lines = [line.strip() for line in self.output]
        start = next((i for i, line in enumerate(lines) if line.startswith(("cause:", "╰─▶"))), None)
        if start is not None:  # uv: the chain of reasons, up to its hints
            chain = []
            for line in lines[start:]:
                if line.startswith(("hint:", "help:", "Using Python")):
                    break
                chain.append(line.removeprefix("cause:").removeprefix("╰─▶").strip())
            text = " ".join(chain)
        else:
            text = " ".join(line.removeprefix("ERROR:").removeprefix("error:").strip() for line in lines
                            if line.startswith(("ERROR:", "error:")))  # fmt: skip
        text = re.sub(r"\s+", " ", text).strip().rstrip(".")
        if len(text) > CAUSE_CHARS:  # the end of a long chain holds its conclusion
            text = "... " + text[-CAUSE_CHARS:].split(" ", 1)[-1]
        return text or (lines[-1] if lines else "the installer failed without a message")

    def missing(self) -> list[str]:
        """Packages the index does not have at all (uv: "not found in the package registry")."""
        text = "\n".join(self.output)
        return list(dict.fromkeys(_NOT_ON_INDEX.findall(text) + _PIP_NOT_FOUND.findall(text)))


@dataclass
class Plan:
    """What to install, and how: the requirements, the constraints (a CPU torch), the installer's extra
    arguments, and the substitutions made so far (lines for the logs)."""

    requirements: list[str]
    constraints: list[str] = field(default_factory=list)
    uv_args: list[str] = field(default_factory=list)
    substitutions: list[str] = field(default_factory=list)
    #: wheels only: no package is built from its source distribution
    no_build: bool = False


def uv_bin() -> str | None:
    """uv's binary, or None when it is missing or the ``installer`` setting (``AMLEMU_INSTALLER``) is ``pip``:
    then pip installs."""
    installer = (config.setting("installer") or "uv").strip().lower()
    if installer not in ("uv", "pip"):
        raise ValidationError(f"AMLEMU_INSTALLER (installer: in .amlemu.yml) is uv or pip; got '{installer}'.")
    if installer == "pip":
        return None
    try:
        from uv import find_uv_bin  # the uv package's locator: only a build needs it

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return None


def installer_env() -> dict[str, str]:
    """The environment of an installer run: uv's shared wheel cache, no colour codes in logs."""
    env = dict(os.environ)
    env["UV_CACHE_DIR"] = str(wheelhouse.uv_cache_dir())
    env.pop("VIRTUAL_ENV", None)  # uv would target the caller's venv with --python missing
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return env


# --------------------------------------------------------------------------- torch


def torch_plan(requirements: Sequence[str], python: str, *, strict: bool) -> Plan:
    """``requirements`` with torch routed to a CPU build (see the module docstring)."""
    plan = Plan(list(requirements))
    wheels = [w for w in wheelhouse.local_wheels(pins.package_indexes().find_links, "torch") if _installs_on(w, python)]
    if not wheels:
        plan.uv_args += ["--torch-backend", "cpu"]
        return plan
    version = parse_wheel_filename(wheels[0].name)[1]
    plan.constraints.append(f"torch=={version}")
    for i, line in enumerate(plan.requirements):
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) != "torch" or req.specifier.contains(version, prereleases=True):
            continue
        if strict:
            raise EmulatorError(
                f"'{line}' asks for a torch this machine has no CPU build of: the only one is torch {version} "
                f"({wheels[0]}), and amlemu never downloads a CUDA torch. Pins are strict (AMLEMU_PINS=strict), so "
                f"it does not put in {version}: pin torch=={version}, put a CPU wheel of the version you need in "
                "pip's find-links, or drop strict pins.",
                code="EnvironmentBuildFailed",
            )
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        plan.requirements[i] = f"{req.name}{extras}=={version}" + (f"; {req.marker}" if req.marker else "")
        plan.substitutions.append(
            f"torch {req.specifier} → {version} (the CPU build on this machine; amlemu never downloads a CUDA torch)"
        )
    return plan


def _installs_on(wheel: Path, python: str) -> bool:
    major, minor = python.split(".")[:2]
    return any(
        tag.interpreter in (f"cp{major}{minor}", f"py{major}", f"py{major}{minor}")
        for tag in parse_wheel_filename(wheel.name)[3]
    )


# --------------------------------------------------------------------------- running installers


def run(cmd: list[str], on_line: Log | None, *, terminal: bool = False) -> tuple[int, list[str]]:
    """Run an installer; its output lines, cleaned of colour codes and progress redraws, go to
    ``on_line`` as they come and are returned. With ``terminal``, the installer writes to this
    process's stderr through a pseudo-terminal (its progress bars show) and nothing goes to ``on_line``."""
    lines: list[str] = []

    def take(text: str) -> None:
        for raw in text.split("\n"):
            line = _ANSI.sub("", raw.rstrip("\r").rsplit("\r", 1)[-1]).rstrip()
            if line:
                lines.append(line)
                if on_line and not terminal:
                    on_line(line)

    if not terminal:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=installer_env()
        )
        assert proc.stdout is not None
        for chunk in proc.stdout:
            take(chunk.decode(errors="replace"))
        return proc.wait(), lines
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=installer_env())
    finally:
        os.close(slave)
    pending = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the installer closed its end
            break
        if not chunk:
            break
        sys.stderr.buffer.write(chunk)
        sys.stderr.flush()
        pending += chunk
        complete, _, pending = pending.rpartition(b"\n")
        if complete:
            take(complete.decode(errors="replace"))
    os.close(master)
    take(pending.decode(errors="replace"))
    return proc.wait(), lines


def on_terminal() -> bool:
    """Whether the build's progress is watched on a terminal (``amlemu environment build`` in a shell)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def install(python: Path, plan: Plan, log: Log, build_log: Log) -> list[str]:
    """Install ``plan`` into the environment of interpreter ``python``: offline first, then with the
    index. Returns the installer's output; raises :class:`InstallFailed`."""
    uv = uv_bin()
    with tempfile.TemporaryDirectory(prefix="amlemu-reqs-") as scratch:
        reqs = Path(scratch, "requirements.txt")
        reqs.write_text("\n".join(plan.requirements) + "\n")
        files = ["-r", str(reqs)]
        if plan.constraints:
            Path(scratch, "constraints.txt").write_text("\n".join(plan.constraints) + "\n")
            files += ["-c", str(Path(scratch, "constraints.txt"))]
        links = ["--find-links", str(wheelhouse.folder())]  # the configured find-links come with the indexes
        if uv:
            indexes = pins.package_indexes().uv_args()
            binary = ["--no-build"] if plan.no_build else []
            # --compile-bytecode: as pip does at install; otherwise every job and replica on the environment
            # compiles what it imports again each time (PYTHONDONTWRITEBYTECODE, as on CI machines; a read-only
            # container): seconds for mlflow or pandas at every start
            base = [uv, "pip", "install", "--compile-bytecode", "--python", str(python), *links, *files]
            base += [*plan.uv_args, *binary, *indexes]
            # offline, the same index arguments let uv read what it cached from those indexes before
            offline, online = base + ["--offline"], base
        else:
            binary = ["--only-binary", ":all:"] if plan.no_build else []
            pip = [str(python), "-m", "pip", "install", "--progress-bar", "off", *links, *files, *binary]
            offline, online = pip + ["--no-index"], pip
        terminal = on_terminal()

        def both(line: str) -> None:
            build_log(line)
            log(f"[build] {line}")

        def attempt(cmd: list[str]) -> tuple[int, list[str]]:
            code, lines = run(cmd, both, terminal=terminal)
            if terminal:  # the terminal showed them; the build log keeps them
                for line in lines:
                    build_log(line)
            return code, lines

        # uv: a resolution alone (tens of milliseconds) says whether the offline install can work, so the one
        # install that follows streams its progress (a bar on a terminal); pip: the offline install itself
        code, first = run([*offline, "--dry-run"] if uv else offline, build_log)
        if code == 0:
            if not uv:
                for line in first:
                    log(f"[build] {line}")
                return first
            build_log("[amlemu] installing from uv's cache and this machine's packages (offline)")
            code, lines = attempt(offline)
            if code == 0:
                return lines
            if "Network connectivity is disabled" not in "\n".join(lines):
                raise InstallFailed(lines, network=False)
            first = lines  # uv's cache held the metadata of a wheel it no longer holds: the index has it
        text = "\n".join(first)
        missing = list(dict.fromkeys(_NOT_CACHED.findall(text) + _NO_VERSION.findall(text)))
        what = f"{', '.join(missing)}: not" if missing else "not everything is"
        say = f"[amlemu] {what} in uv's cache or among this machine's packages; asking the package index ..."
        log(say)
        build_log(say)
        code, second = attempt(online)
        if code == 0:
            return second
        network = bool(_NETWORK.search("\n".join(second)))
        raise InstallFailed(second if not network else first + second, network=network, offline_missing=missing)


def failure_error(
    failure: InstallFailed, *, python: str, log_path: Path, tried: Sequence[str] = (), serving: Sequence[str] = ()
) -> EmulatorError:
    """The one error for an install that failed, naming the cause and the fix; ``serving`` are the requirements
    amlemu added (a deployment's scoring server), for a failure that is theirs rather than the user's."""
    tail = "\n".join(failure.output[-LOG_TAIL:])
    after = f" (after substituting: {'; '.join(tried)})" if tried else ""
    if failure.network:
        indexes = pins.package_indexes()
        where = indexes.index_url or "the default package index"
        packages = ", ".join(failure.offline_missing) or "some of its packages"
        message = (
            f"No package index could be reached ({where}), and {packages} "
            f"{'is' if len(failure.offline_missing) == 1 else 'are'} neither in uv's cache "
            f"({wheelhouse.uv_cache_dir()}) nor among this machine's installed packages. Connect to the index once "
            "(what it downloads stays in the cache for offline builds), or point UV_DEFAULT_INDEX (pip: index-url) "
            f"at a reachable one.{after}"
        )
    elif missing := failure.missing():
        message = (
            f"{', '.join(repr(m) for m in missing)} {'is' if len(missing) == 1 else 'are'} not on the package index: "
            "no such pip package exists there. If it is a conda package, its pip package may have another name "
            f"(list that under pip:); otherwise check its spelling in the conda file.{after}"
        )
    else:
        cause = failure.cause
        ours = [req for req in serving if re.search(rf"\b{re.escape(_name(req))}\b", cause, re.I)]
        fix = (
            f"The deployment's scoring server needs {', '.join(ours)}, which this resolution cannot fit on Python "
            f"{python}: ask for a newer Python in the conda file (python=3.X), or change the pins the message names."
            if ours
            else "Change the pins that message names in the conda file."
        )
        message = f"The environment's packages cannot be installed together on Python {python}: {cause}. {fix}{after}"
    return EmulatorError(
        f"Building the environment failed. {message}\nLast lines of the build log:\n{tail}\nFull build log: {log_path}",
        code="EnvironmentBuildFailed",
    )


def remedies(plan: Plan, python: str, *, strict: bool, warn: Log, say: Log | None = None) -> list[Callable[[], bool]]:
    """What a failed resolution of ``plan`` tries next, in order, each True when it changed the plan: fit the
    pins to ``python`` (:func:`emulator.runtime.pins.fit`; raises for a package or version that does not
    exist), build source-only packages, and, unless ``strict``, Azure's packages' stand-ins. Sets the plan to
    wheels only until then: an old pin's source build (numpy 1.21 on Python 3.11) runs for minutes and fails,
    where fitting the pin takes a second. Each substitution goes to ``warn``; ``say`` hears the source build."""

    def fit() -> bool:
        fitted = pins.fit(plan.requirements, python, strict=strict)
        plan.requirements = fitted.requirements
        for line in fitted.substitutions:
            warn(line)
        return bool(fitted.substitutions)

    def build_sources() -> bool:
        plan.no_build = False
        if say:
            say(f"[amlemu] not every package has a wheel for Python {python}: building those from source ...")
        return True

    def stand_in() -> bool:
        plan.requirements, lines = stand_ins(plan.requirements)
        for line in lines:
            warn(line)
        return bool(lines)

    plan.no_build = True
    return [fit, build_sources, *([] if strict else [stand_in])]


def stand_ins(requirements: Sequence[str]) -> tuple[list[str], list[str]]:
    """``requirements`` with Azure's packages replaced by their stand-ins, and a line for each."""
    out, lines = [], []
    for line in requirements:
        try:
            name = canonicalize_name(Requirement(line).name)
        except InvalidRequirement:
            out.append(line)
            continue
        if name not in AZURE_STAND_INS:
            out.append(line)
            continue
        stand_in = AZURE_STAND_INS[name]
        if stand_in:
            out.append(stand_in)
        lines.append(
            f"{line} cannot be installed here; "
            + (f"{stand_in} stands in for it" if stand_in else "left out (it only talks to Azure)")
            + (" (MLflow tracking stays local through MLFLOW_TRACKING_URI)" if name == "azureml-mlflow" else "")
        )
    return sorted(set(out)), lines


def _name(requirement: str) -> str:
    try:
        return Requirement(requirement).name
    except InvalidRequirement:
        return requirement


def names(requirements: Sequence[str], project: str) -> bool:
    """Whether ``requirements`` name ``project``."""
    for line in requirements:
        try:
            if canonicalize_name(Requirement(line).name) == canonicalize_name(project):
                return True
        except InvalidRequirement:
            continue
    return False


def build_logs_dir() -> Path:
    return config.cache_dir() / "build-logs"
