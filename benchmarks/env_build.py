"""Environment builds: how long until a conda file's environment is ready, beside the old pip-based build.

All through the CLI a user runs (``amlemu environment create`` then ``amlemu environment build``, the
process runtime), each in a fresh ``AMLEMU_HOME``:
  (a) a new conda file (scikit-learn, pandas, inference-schema; Azure's sklearn example's shape), with a
      fresh, empty uv cache: the first build a machine sees of it (the wheelhouse of this machine's
      packages is made once per machine; (a0) says how long that takes when it is missing);
  (b) the same environment a second time: cached virtualenv;
  (b') the same conda file, a new virtualenv (another virtualenv cache): uv's cache is warm;
  (b'') the same conda file in another fresh AMLEMU_HOME: the machine's virtualenv cache answers;
  (c) a curated environment in exact mode (AzureML-sklearn-1.5, AMLEMU_CURATED=exact: Azure's versions
      and Python), first time, fresh uv cache; skipped with a note where exact mode is not there;
  baseline: the old build, in the same run: ``python -m venv`` plus ``pip install`` of the same packages
      with pip's cache off (cold, like (a)).

Usage: ./run bench env_build [--skip-baseline] [--cold-wheelhouse]
Targets (issue 12): (a) <= 15 s, (b) <= 1 s, (c) <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emulator.runtime import wheelhouse

CONDA = """name: sklearn-env
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
    - scikit-learn
    - pandas
    - inference-schema
"""
PACKAGES = ["scikit-learn", "pandas", "inference-schema"]
AMLEMU = [str(Path(sys.executable).parent / "amlemu")]


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def build(work: Path, home: str, env: dict, name: str = "sklearn-env") -> tuple[float, dict]:
    env = {**env, "AMLEMU_HOME": str(work / home)}
    seconds, out = timed([*AMLEMU, "environment", "build", "--name", name], env, work)
    return seconds, json.loads(out)


def register(work: Path, home: str, env: dict) -> None:
    env = {**env, "AMLEMU_HOME": str(work / home)}
    timed([*AMLEMU, "environment", "create", "--name", "sklearn-env", "--image", "x:1",
           "--conda-file", str(work / "conda.yml")], env, work)  # fmt: skip


def exact_mode_available() -> str | None:
    """Why (c) cannot run here, or None."""
    from emulator.environments import curated  # here: only (c) needs it

    if "exact" not in getattr(curated, "MODES", ()):
        return "exact mode for curated environments is not in this tree yet"
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--cold-wheelhouse", action="store_true", help="also time (a0): the wheelhouse made anew")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="amlemu-bench-env-"))
    load_start = os.getloadavg()[0]
    rows: list[tuple[str, float | None, str]] = []
    try:
        (work / "conda.yml").write_text(CONDA)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMLEMU_")}
        # each scenario its own virtualenv cache (AMLEMU_ENV_CACHE): the machine's would answer a build it has seen
        cold = {**env, "AMLEMU_UV_CACHE": str(work / "uv-cold"), "AMLEMU_ENV_CACHE": str(work / "venvs-a")}
        if args.cold_wheelhouse:
            machine = {**cold, "AMLEMU_MACHINE_CACHE": str(work / "machine"), "AMLEMU_UV_CACHE": str(work / "uv-a0"),
                       "AMLEMU_ENV_CACHE": str(work / "venvs-a0")}  # fmt: skip
            register(work, "home-a0", machine)
            seconds, _ = build(work, "home-a0", machine)
            rows.append(("(a0) new conda file, no wheelhouse, empty uv cache", seconds, "cold: all"))

        # the machine's wheelhouse, made once (not timed: (a0) times it)
        had_wheelhouse = any(wheelhouse.folder().glob(".packed-*"))
        wheelhouse.ensure()

        register(work, "home-a", cold)
        seconds, first = build(work, "home-a", cold)
        assert first["cached"] is False, first
        rows.append(("(a) new conda file, empty uv cache", seconds, "cold: AMLEMU_HOME, uv cache"))
        times = []
        for _ in range(5):
            seconds, again = build(work, "home-a", cold)
            assert again["cached"] is True, again
            times.append(seconds)
        rows.append(("(b) the same environment again (median of 5)", statistics.median(times), "warm: the virtualenv"))
        other = {**cold, "AMLEMU_ENV_CACHE": str(work / "venvs-b")}
        register(work, "home-b", other)
        seconds, _ = build(work, "home-b", other)
        rows.append(("(b') the same conda file, new virtualenv", seconds, "cold: AMLEMU_HOME, venvs; warm: uv cache"))
        register(work, "home-b2", cold)
        seconds, _ = build(work, "home-b2", cold)
        rows.append(("(b'') the same conda file, new AMLEMU_HOME", seconds, "cold: AMLEMU_HOME; warm: machine's venvs"))

        why_not = exact_mode_available()
        if why_not:
            rows.append(("(c) curated exact mode, first time", None, f"skipped: {why_not}"))
        else:
            exact = {**env, "AMLEMU_UV_CACHE": str(work / "uv-exact"), "AMLEMU_CURATED": "exact",
                     "AMLEMU_ENV_CACHE": str(work / "venvs-c")}  # fmt: skip
            seconds, made = build(work, "home-c", exact, name="AzureML-sklearn-1.5")
            assert made["cached"] is False, made
            rows.append(
                ("(c) curated AzureML-sklearn-1.5, exact mode, first time", seconds, "cold: AMLEMU_HOME, uv cache")
            )

        baseline = None
        if not args.skip_baseline:
            venv = work / "baseline-venv"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir",
                 "--disable-pip-version-check", *PACKAGES],
                check=True,
            )  # fmt: skip
            baseline = time.perf_counter() - start
            rows.append(("baseline: python -m venv + pip install (pip's cache off)", baseline, "cold: pip"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"wheelhouse of this machine's packages: {'present before the run' if had_wheelhouse else 'made in this run'}"
    )
    print(
        f"load average (1 min): {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; "
        f"{os.cpu_count()} cores"
    )
    width = max(len(label) for label, _, _ in rows)
    for label, seconds, caches in rows:
        shown = f"{seconds:7.2f} s" if seconds is not None else "      - "
        ratio = (
            f"  baseline/this {baseline / seconds:5.1f}x" if baseline and seconds and "baseline" not in label else ""
        )
        print(f"{label:<{width}}  {shown}{ratio}   [{caches}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
