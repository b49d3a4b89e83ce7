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
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from emulator import config
from emulator.errors import EmulatorError
from emulator.runtime import builds, pythons

READY = ".amlemu-ready"
BUILDER = 4  # what a build holds changed (4: bytecode compiled at install): older venvs are rebuilt

Log = Callable[[str], None]


@dataclass(frozen=True)
class Build:
    """A virtualenv ready to run: its ``bin`` folder, whether it was cached, what was substituted."""

    bin_dir: Path
    cached: bool
    substitutions: tuple[str, ...] = ()


def venv_key(requirements: Sequence[str], python: str | None = None, interpreter: Path | None = None) -> str:
    """The cache key: the requirements, the Python asked for, and the interpreter that serves it."""
    blob = json.dumps(
        {
            "builder": BUILDER,
            "python": python,
            "interpreter": str(interpreter or sys.executable),
            "requirements": sorted(requirements),
        }
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def venvs_root() -> Path:
    """The cached virtualenvs, shared by every ``AMLEMU_HOME`` on this machine: ``AMLEMU_ENV_CACHE``, else
    the machine cache's ``venvs`` (see :func:`emulator.config.machine_cache`)."""
    configured = config.setting("env_cache")
    return Path(configured).expanduser() if configured else config.machine_cache() / "venvs"


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
) -> Build:
    """A virtualenv with ``requirements`` and ``extra`` resolved together, on ``python``, built on first use."""
    interpreter, used, substitutions = interpreter_for(python)
    wanted = sorted(set(requirements) | set(extra))
    key = venv_key(wanted, python, interpreter)
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
                    target, wanted, interpreter, used, substitutions, log, _writer(build_log), log_path, extra
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
) -> dict:
    """Build the virtualenv ``target`` (see the module docstring)."""
    from emulator.runtime import installs, pins, wheelhouse  # a build only (see ensure_venv)

    started = time.monotonic()
    strict = pins.strict_pins()

    def say(line: str) -> None:
        log(line)
        build_log(line)

    def warn(line: str) -> None:
        substitutions.append(line)
        say(f"[amlemu] WARNING: {line}")

    say(
        f"[amlemu] building environment {target.name} on Python {python} ({interpreter}; first use, cached "
        f"on this machine afterwards): {' '.join(requirements)}"
    )
    for line in list(substitutions):
        say(f"[amlemu] WARNING: {line}")
    wheelhouse.ensure(say)
    _create(target, interpreter, build_log)
    # pip in the environment, as in Azure's conda environments (a job may pip install at run time)
    pip = [] if installs.names(requirements, "pip") else ["pip"]
    plan = installs.torch_plan([*requirements, *pip], python, strict=strict)
    for line in plan.substitutions:
        warn(line)
    python_exe = target / "bin" / "python"

    remedies = installs.remedies(plan, python, strict=strict, warn=warn, say=say)
    while True:
        try:
            installs.install(python_exe, plan, log, build_log)
            break
        except installs.InstallFailed as failure:
            if failure.network:
                raise installs.failure_error(failure, python=python, log_path=log_path, serving=serving) from None
            while remedies:
                if remedies.pop(0)():
                    break
            else:
                raise installs.failure_error(
                    failure, python=python, log_path=log_path, tried=substitutions, serving=serving
                ) from None
    seconds = time.monotonic() - started
    made = {
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
