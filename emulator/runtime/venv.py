"""The process runtime's cached virtualenvs, one per environment, keyed by a hash of what defines it.

A build (see :mod:`emulator.runtime.installs` for how packages get in):

1. the interpreter: the Python the conda file asks for when this machine has it
   (:func:`emulator.runtime.pythons.find_interpreter`), else the host's, with the warning
   ``python 3.9 → 3.11`` (refused under strict pins);
2. ``uv venv`` on it (``python -m venv`` without uv), then one resolution of the environment's
   requirements together with what the caller adds (a deployment's serving packages, as ranges:
   the user's pins win);
3. when that resolution fails, the pins are fitted to the Python (:func:`emulator.runtime.pins.fit`)
   and it runs again; then, for Azure's own packages that cannot install here, their stand-ins.

A *layered* build (a curated environment in fast mode, see :mod:`emulator.environments.curated`)
is an overlay on the host's interpreter: the virtualenv holds only the requirements (and what they
need that the host lacks), and a ``.pth`` file puts the host's site-packages in front of its own, so a
job sees both, and every distribution the host has at the host's version (amlemu's interpreter stays
consistent: its scoring server, ONNX Runtime, MLflow). The requirements install constrained to the
host's versions (``name==version`` of each installed distribution), so shared dependencies agree with
the host's; when that cannot resolve, the constraints named in the conflict are loosened, then dropped
(a ``WARNING`` each) and, as a last resort, all of them; the host's versions still come first at run
time. Whatever the overlay holds at the host's very version is removed from it again.

Virtualenvs are cached per machine (``AMLEMU_ENV_CACHE``, else the machine cache's ``venvs``), shared
by every ``AMLEMU_HOME``, like uv's cache and the wheelhouse.

Every substitution is a ``WARNING`` line in the caller's log (the job's or the deployment's) and in
the build log (``$AMLEMU_HOME/cache/build-logs/<key>.log``), and is kept with the build (the ready
marker's JSON, and :mod:`emulator.runtime.builds` for ``environment show``). A failed build leaves
nothing in the venvs folder. Two jobs asking for the same environment at once share one build: the
first takes a file lock and builds, the second waits and then reuses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from emulator import config
from emulator.errors import EmulatorError
from emulator.runtime import builds, pythons

READY = ".amlemu-ready"
HOST_LAYER_NAME = "_amlemu_host_layer"  # a layered overlay's link to the host's site-packages (.pth and module)
LAYERED_BUILDER = 3  # how a layered overlay is made changed (3: the host in front of the overlay): rebuilt
BUILDER = 3  # what a build holds changed (3: fitted ranges keep their release series): older venvs are rebuilt

Log = Callable[[str], None]


@dataclass(frozen=True)
class Build:
    """A virtualenv ready to run: its ``bin`` folder, whether it was cached, what was substituted."""

    bin_dir: Path
    cached: bool
    substitutions: tuple[str, ...] = ()


def venv_key(
    requirements: Sequence[str],
    python: str | None = None,
    interpreter: Path | None = None,
    layered_on: Mapping[str, str] | None = None,
) -> str:
    """The cache key: the requirements, the Python asked for, the interpreter that serves it, and for a
    layered build the host's installed versions (``layered_on``) it is fitted to."""
    fields: dict = {
        "builder": BUILDER,
        "python": python,
        "interpreter": str(interpreter or sys.executable),
        "requirements": sorted(requirements),
    }
    if layered_on is not None:
        fields["layered_on"] = sorted(layered_on.items())
        fields["layered_builder"] = LAYERED_BUILDER
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


def venvs_root() -> Path:
    """The cached virtualenvs, shared by every ``AMLEMU_HOME`` on this machine: ``AMLEMU_ENV_CACHE``, else
    the machine cache's ``venvs`` (see :func:`emulator.config.machine_cache`)."""
    configured = config.setting("env_cache")
    return Path(configured).expanduser() if configured else config.machine_cache() / "venvs"


def host_site_dirs() -> list[Path]:
    """The host interpreter's site-packages (purelib, then platlib when it differs)."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys(Path(paths[key]) for key in ("purelib", "platlib")))


def installed(site_dirs: Sequence[Path]) -> dict[str, str]:
    """Normalized distribution name -> version of what ``site_dirs`` hold, from the ``.dist-info`` folder
    names (one listing per folder)."""
    found: dict[str, str] = {}
    for folder in site_dirs:
        try:
            names = [e.name for e in folder.iterdir() if e.name.endswith(".dist-info")]
        except OSError:
            continue
        for entry in names:
            name, _, version = entry.removesuffix(".dist-info").partition("-")
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), version)
    return found


def interpreter_for(python: str | None) -> tuple[Path, str, list[str]]:
    """The interpreter a build uses for ``python`` (the minor version a conda file asks for), the
    version it is, and the substitution line when it is not the one asked for.

    Raises:
        EmulatorError: no such Python here and pins are strict.
    """
    host = pythons.host_version()
    if not python:
        return Path(sys.executable), host, []
    found = pythons.find_interpreter(python)
    if found is not None:
        return found, pythons.minor_version(python), []
    from emulator.runtime import pins  # only without that Python: packaging's parsers cost ~50 ms at start

    if pins.strict_pins():
        raise pins.python_refusal(python, host)
    return Path(sys.executable), host, [pins.python_substitution(python, host)]


def ensure_venv(
    requirements: Sequence[str],
    log: Log = print,
    *,
    extra: Sequence[str] = (),
    python: str | None = None,
    layered: bool = False,
) -> Build:
    """A virtualenv with ``requirements`` and ``extra`` resolved together, on ``python``, built on first use;
    ``layered``: an overlay of ``requirements`` on the host's interpreter (``extra`` and ``python`` are the
    host's then: its packages include the scoring server's)."""
    host = installed(host_site_dirs()) if layered else None
    if layered:
        python, extra = None, ()
    interpreter, used, substitutions = interpreter_for(python)
    wanted = sorted(set(requirements) | set(extra))
    key = venv_key(wanted, python, interpreter, host)
    root = venvs_root()
    target = root / key
    if (target / READY).exists():
        return _reuse(target, log)
    root.mkdir(parents=True, exist_ok=True)
    # a build only: the installers and packaging's parsers cost ~60 ms, which every job's supervisor and CLI
    # start (system prune reads READY here) would pay for nothing
    from emulator.runtime import installs

    with _build_lock(root / f"{key}.lock") as lock_path:
        if (target / READY).exists():
            return _reuse(target, log)
        shutil.rmtree(target, ignore_errors=True)  # a build killed midway
        installs.build_logs_dir().mkdir(parents=True, exist_ok=True)
        log_path = installs.build_logs_dir() / f"{key}.log"
        try:
            with open(log_path, "w") as build_log:
                made = _build(
                    target, wanted, interpreter, used, substitutions, log, _writer(build_log), log_path, extra, host
                )
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            lock_path.unlink(missing_ok=True)  # under the lock: the next builder starts on a new one
            raise
    builds.record(
        requirements,
        python,
        f"process:{key}",
        {
            "runtime": "process",
            "venv": str(target),
            "python": used,
            "interpreter": str(interpreter),
            "with_serving_packages": bool(extra),
            "layered": layered,
            "substitutions": made["substitutions"],
            "build_log": str(log_path),
        },
    )
    return Build(target / "bin", cached=False, substitutions=tuple(made["substitutions"]))


def cached(requirements: Sequence[str], python: str | None = None) -> Path | None:
    """The ready virtualenv of an environment with ``requirements`` on ``python`` (no extras: a job's) on this
    machine, if any home built it; None when not built, or its Python cannot be honoured here."""
    try:
        interpreter = interpreter_for(python)[0]
    except EmulatorError:
        return None
    target = venvs_root() / venv_key(sorted(set(requirements)), python, interpreter)
    return target if (target / READY).exists() else None


def cached_layered(requirements: Sequence[str]) -> Path | None:
    """The ready overlay of a layered environment with ``requirements`` on this machine, if built (by any home)."""
    target = venvs_root() / venv_key(sorted(set(requirements)), None, Path(sys.executable), installed(host_site_dirs()))
    return target if (target / READY).exists() else None


def _reuse(target: Path, log: Log) -> Build:
    """A cached build: its substitutions said again (this run gets them too); refused if pins are strict now."""
    (target / READY).touch()  # last use, for `amlemu system prune`
    try:
        made = json.loads((target / READY).read_text())
    except ValueError:
        made = {}
    substitutions = made.get("substitutions", []) if isinstance(made, dict) else []
    if substitutions:
        from emulator.runtime import pins  # only a build with substitutions: packaging costs ~50 ms at start

    if substitutions and pins.strict_pins():
        raise EmulatorError(
            f"This environment builds here only with substitutions ({'; '.join(substitutions)}), and pins are "
            "strict (AMLEMU_PINS=strict or pins: strict in .amlemu.yml). Pin versions that exist for the Python it "
            "runs on, install the Python it asks for, or drop strict pins.",
            code="EnvironmentBuildFailed",
        )
    for line in substitutions:
        log(f"[amlemu] WARNING: {line}")
    return Build(target / "bin", cached=True, substitutions=tuple(substitutions))


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[Path]:
    """An exclusive lock on ``path``; a lock file a failed builder unlinked is not the lock any more."""
    while True:
        handle = open(path, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield path
    finally:
        handle.close()


def _writer(stream: IO[str]) -> Log:
    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return write


def _build(
    target: Path,
    requirements: list[str],
    interpreter: Path,
    python: str,
    substitutions: list[str],
    log: Log,
    build_log: Log,
    log_path: Path,
    serving: Sequence[str] = (),
    host: Mapping[str, str] | None = None,
) -> dict:
    """Build the virtualenv ``target``; ``host``: a layered build's host versions (see the module docstring)."""
    from emulator.runtime import installs, pins, wheelhouse  # a build only (see ensure_venv)

    started = time.monotonic()
    strict = pins.strict_pins()

    def say(line: str) -> None:
        log(line)
        build_log(line)

    def warn(line: str) -> None:
        substitutions.append(line)
        say(f"[amlemu] WARNING: {line}")

    what = "an overlay on amlemu's interpreter" if host is not None else "environment"
    say(
        f"[amlemu] building {what} {target.name} on Python {python} ({interpreter}; first use, cached "
        f"on this machine afterwards): {' '.join(requirements)}"
    )
    for line in list(substitutions):
        say(f"[amlemu] WARNING: {line}")
    wheelhouse.ensure(say)
    _create(target, interpreter, build_log)
    if host is not None:
        _link_host(target)
    # pip in the environment, as in Azure's conda environments (a job may pip install at run time); a layered
    # one has the host's
    pip = [] if host is not None or installs.names(requirements, "pip") else ["pip"]
    plan = installs.torch_plan([*requirements, *pip], python, strict=strict)
    fitted_to = _host_constraints(host, requirements) if host is not None else []
    plan.constraints += fitted_to
    if host is not None:  # unpinned, fitted to the host: a resolver backtracks to ancient releases (azureml-core 1.0)
        plan.requirements = _newest_as_floor(plan.requirements, target / "bin" / "python", build_log)
    for line in plan.substitutions:
        warn(line)
    python_exe = target / "bin" / "python"

    def fit() -> bool:  # pins without a distribution for this Python: the nearest version that has one
        fitted = pins.fit(plan.requirements, python, strict=strict)  # raises: no such package, no such pin
        plan.requirements = fitted.requirements
        for line in fitted.substitutions:
            warn(line)
        return bool(fitted.substitutions)

    def build_sources() -> bool:  # a package published only as source (an sdist) is built, as pip would
        plan.no_build = False
        say(f"[amlemu] not every package has a wheel for Python {python}: building those from source ...")
        return True

    def stand_in() -> bool:  # Azure's own packages that cannot install here
        plan.requirements, lines = installs.stand_ins(plan.requirements)
        for line in lines:
            warn(line)
        return bool(lines)

    # wheels only at first: an old pin's source build (numpy 1.21 on Python 3.11) runs for many minutes
    # and fails, where fitting the pin takes a second; sources are built after fitting, if still needed
    plan.no_build = True

    def unfit() -> bool:  # a layered build's last resort before stand-ins: none of the host's versions
        return _loosen(plan, fitted_to, last[0], warn, named_only=False) if fitted_to and last else False

    last: list[installs.InstallFailed] = []
    remedies = [fit, build_sources, unfit, *([] if strict else [stand_in])]
    while True:
        try:
            installs.install(python_exe, plan, log, build_log)
            break
        except installs.InstallFailed as failure:
            if failure.network:
                raise installs.failure_error(failure, python=python, log_path=log_path, serving=serving) from None
            if fitted_to and _loosen(plan, fitted_to, failure, warn, named_only=True):
                continue
            last[:] = [failure]
            while remedies:
                if remedies.pop(0)():
                    break
            else:
                raise installs.failure_error(
                    failure, python=python, log_path=log_path, tried=substitutions, serving=serving
                ) from None
    if host is not None:
        _drop_host_copies(target, host, build_log)
    seconds = time.monotonic() - started
    made = {
        "layered": host is not None,
        "requirements": requirements,
        "installed": plan.requirements,
        "python": python,
        "interpreter": str(interpreter),
        "substitutions": substitutions,
        "seconds": round(seconds, 2),
    }
    (target / READY).write_text(json.dumps(made))
    say(f"[amlemu] environment {target.name} ready in {seconds:.1f} s")
    return made


# The overlay's link to the host: a module its .pth imports at start-up (a .pth holds one line of code).
# site.addsitedir processes the host's own .pth files (amlemu's editable install); the host's folders then
# go in front of the overlay's, so every distribution the host has is the host's version, consistent with
# the rest of amlemu's interpreter, and the overlay adds only what the host lacks.
_HOST_LAYER_MODULE = """\"\"\"amlemu: the host's site-packages in front of this overlay's (emulator.runtime.venv).\"\"\"
import os
import site
import sys

_overlay = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
_before = len(sys.path)
for _folder in {folders!r}:
    site.addsitedir(_folder)
_host = sys.path[_before:]
del sys.path[_before:]
_real = [os.path.realpath(p) for p in sys.path]
_at = _real.index(_overlay) if _overlay in _real else len(sys.path)
sys.path[_at:_at] = _host
"""


def _link_host(target: Path) -> None:
    """The overlay's link to the host's site-packages (in front of its own; see ``_HOST_LAYER_MODULE``)."""
    sites = list(target.glob("lib/python*/site-packages"))
    if not sites:
        raise EmulatorError(f"The virtualenv {target} has no site-packages folder.", code="EnvironmentBuildFailed")
    folders = [str(folder) for folder in host_site_dirs()]
    (sites[0] / f"{HOST_LAYER_NAME}.py").write_text(_HOST_LAYER_MODULE.format(folders=folders))
    (sites[0] / f"{HOST_LAYER_NAME}.pth").write_text(f"import {HOST_LAYER_NAME}\n")


def _host_constraints(host: Mapping[str, str], requirements: Sequence[str]) -> list[str]:
    """``name==version`` of each host distribution a layered build keeps shared dependencies at (not amlemu
    itself, nor what the requirements name)."""
    named = {re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~\[;@]", r.strip(), maxsplit=1)[0]).lower() for r in requirements}
    return [f"{name}=={version}" for name, version in sorted(host.items()) if name != "amlemu" and name not in named]


def _loosen(plan, fitted_to: list[str], failure, warn: Log, *, named_only: bool) -> bool:
    """A layered build whose packages cannot fit the host's versions: each host constraint the installer's
    reason names is loosened, ``name==2.4.6`` to ``name>=2`` (a floor at the host's major version, so the
    resolver does not backtrack to an ancient release), and dropped when named again; or, not ``named_only``,
    all are dropped. The overlay then holds the versions those packages need, which a job gets in place of
    the host's. False when nothing changed."""
    text = "\n".join(failure.output).lower()

    def name_of(line: str) -> str:
        return re.split(r"[=<>]", line, maxsplit=1)[0]

    named = [c for c in fitted_to if re.search(rf"(?<![\w.-]){re.escape(name_of(c).lower())}(?![\w.-])", text)]
    if not named and named_only:
        return False
    loosened, dropped = [], []
    for line in named if named_only else list(fitted_to):
        index = fitted_to.index(line)
        plan.constraints.remove(line)
        major = line.partition("==")[2].split(".")[0]
        if named_only and "==" in line and major.isdigit():
            fitted_to[index] = f"{name_of(line)}>={major}"
            plan.constraints.append(fitted_to[index])
            loosened.append(line)
        else:
            del fitted_to[index]
            dropped.append(line)
    if not loosened and not dropped:
        return False
    which = ", ".join(loosened + dropped) if named_only else f"all {len(dropped)} of amlemu's versions"
    warn(
        f"the overlay's packages do not resolve with amlemu's interpreter's {which}: they were installed without "
        "them, and a job still imports amlemu's versions (the host layer comes first), which those packages may "
        "not support (the build log has the installer's reasons; exact mode builds Azure's versions alone)"
    )
    return True


def _newest_as_floor(requirements: list[str], python_exe: Path, build_log: Log) -> list[str]:
    """A layered build's unpinned requirements with their newest release for this Python as a floor
    (``azureml-core>=1.61.0``), as Azure's image build takes the newest of an unpinned package; as they
    were when that cannot be asked (no uv, no index and nothing cached)."""
    from emulator.runtime import installs, pins, wheelhouse  # a build only (see ensure_venv)

    bare = [r for r in requirements if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", r.strip())]
    uv = installs.uv_bin()
    if not bare or not uv:
        return requirements
    with tempfile.TemporaryDirectory(prefix="amlemu-newest-") as scratch:
        listed = Path(scratch, "requirements.in")
        listed.write_text("\n".join(bare) + "\n")
        cmd = [uv, "pip", "compile", "--no-deps", "--no-header", "--no-annotate", "--python", str(python_exe),
               "--find-links", str(wheelhouse.folder()), *pins.package_indexes().uv_args(), str(listed)]  # fmt: skip
        code, lines = installs.run(cmd, build_log)
        if code != 0:
            code, lines = installs.run([*cmd, "--offline"], build_log)
    if code != 0:
        return requirements
    newest = {}
    for line in lines:
        name, sep, version = line.strip().partition("==")
        if sep:
            newest[re.sub(r"[-_.]+", "-", name).lower()] = version.split(";")[0].strip()
    out = []
    for req in requirements:
        version = newest.get(re.sub(r"[-_.]+", "-", req.strip()).lower()) if req in bare else None
        out.append(f"{req}>={version}" if version else req)
    return out


def _drop_host_copies(target: Path, host: Mapping[str, str], build_log: Log) -> None:
    """Remove from a layered overlay what it holds at the host's very version (the host layer has it)."""
    from emulator.runtime import installs  # a build only (see ensure_venv)

    overlay = installed(list(target.glob("lib/python*/site-packages")))
    same = sorted(name for name, version in overlay.items() if host.get(name) == version)
    if not same:
        return
    uv = installs.uv_bin()
    python_exe = str(target / "bin" / "python")
    cmd = [uv, "pip", "uninstall", "--python", python_exe] if uv else [python_exe, "-m", "pip", "uninstall", "-y"]
    build_log(f"[amlemu] the host layer has {len(same)} of these at the same version: removed from the overlay")
    code, lines = installs.run([*cmd, *same], build_log)
    if code != 0:
        raise EmulatorError(
            f"Removing from the overlay {target} what the host already has failed: {' '.join(lines[-5:])}",
            code="EnvironmentBuildFailed",
        )


def _create(target: Path, interpreter: Path, build_log: Log) -> None:
    """An empty virtualenv at ``target`` on ``interpreter``: ``uv venv``, or ``python -m venv`` without uv."""
    from emulator.runtime import installs  # a build only (see ensure_venv)

    uv = installs.uv_bin()
    cmd = (
        [uv, "venv", "--no-project", "--no-config", "--python", str(interpreter), str(target)]
        if uv
        else [str(interpreter), "-m", "venv", str(target)]
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, env=installs.installer_env())
    for line in (proc.stdout + proc.stderr).splitlines():
        build_log(line)
    if proc.returncode != 0:
        raise EmulatorError(
            f"Creating the virtualenv on {interpreter} failed: {(proc.stderr or proc.stdout).strip()[-500:]}. "
            "Point AMLEMU_PYTHONS at a working interpreter of that version, or remove python= from the conda file.",
            code="EnvironmentBuildFailed",
        )
