"""The test harness's speed: examples/ci-project's suite, as its CI runs it, with a warm and a cold environment cache.

The suite (four tests, amlemu's pytest plugin and ScoringContainer only): train on iris (the job YAML and its conda
environment, on the process runtime) and register the model; deploy score.py with the same conda environment and
call it three times; a deployment whose init() fails, and the error the test gets; score.py in its container
(ScoringContainer, the docker runtime's image for the conda file).

Each run is pytest in a fresh copy of the project with a fresh AMLEMU_HOME, on this interpreter (amlemu as
installed in it), the container test required (REQUIRE_DOCKER=1):
  (w1) warm, ``pytest``: the machine's environment cache already holds the conda file's two virtualenvs (the job's,
       and the deployment's with the scoring server's packages); an untimed run first makes sure of it;
  (w2) warm, ``pytest -n 2``;
  (c)  cold, ``pytest -n 2``: AMLEMU_ENV_CACHE is a new, empty folder, so both virtualenvs are built during the run.
       uv's wheel cache stays warm (packages are linked from it, nothing is downloaded), and so does Docker's image
       cache (the container test's image is keyed by its requirements, not by the virtualenv cache).
Beside them: what the same steps cost with azure-ai-ml's ``local=True`` endpoints, from the SDK's source (printed,
not run: it pulls its base image from a registry).

Usage: ./run bench harness [--runs N] [--skip-warmup]
Targets (issue 14): warm <= 20 s wall; cold with -n 2 <= 40 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1] / "examples" / "ci-project"
TESTS = 4
WARM_TARGET_S, COLD_TARGET_S = 20.0, 40.0
_DURATION = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+\S+::(\S+)", re.M)

LOCAL_TRUE = """\
azure-ai-ml local=True, the same steps (azure-ai-ml {version}, azure/ai/ml/_local_endpoints/docker_client.py; not run:
it needs a registry):
  train on iris + register   no local mode: jobs.create_or_update sends the job to the workspace's compute
  each local deployment      docker build with pull=True (the base image mcr.microsoft.com/azureml/...-ubuntu22.04
                             is checked against its registry on every build) and `conda env create` of the conda
                             file (a cached layer after the first build), then container start and a fixed
                             time.sleep({wait}) (LocalEndpointConstants.DEFAULT_STARTUP_WAIT_TIME_SECONDS) before the
                             container's state is read: no readiness probe
  deploy + three calls       >= {wait} s (one build from cache + the wait), the calls as here
  failing init               >= {wait} s before anything is known, then only "exited" if the server's process ended
                             (LocalEndpointInFailedStateError, which sends you to get_logs); no cause in the error
  score.py in its container  >= {wait} s (another deployment: its own image name, build, wait)
  total, all layers cached   >= {total} s of fixed waits alone for the three deployments, plus three builds and
                             three registry round-trips; one container per endpoint name, nothing runs in parallel
  cold (first build)         + the base image pull (over 1 GB) and conda's solve and downloads: minutes, per machine
"""


def run_suite(work: Path, name: str, parallel: bool, env_cache: Path | None) -> tuple[float, dict[str, float]]:
    """One timed run of the project's suite; the wall time and each test's setup + call + teardown seconds."""
    folder = work / name
    project = folder / "ci-project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMLEMU_HOME", "AMLEMU_WORKSPACE", "PYTEST_"))}
    env.update({"AMLEMU_HOME": str(folder / "home"), "AMLEMU_BACKEND": "local", "REQUIRE_DOCKER": "1"})
    if env_cache is not None:
        env["AMLEMU_ENV_CACHE"] = str(env_cache)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--durations=0"]
    cmd += ["--basetemp", str(folder / "basetemp"), *(["-n", "2"] if parallel else [])]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or f"{TESTS} passed" not in out:
        tail = "\n".join(out.splitlines()[-60:])
        raise SystemExit(f"{name}: the suite did not pass (pytest exit {proc.returncode}):\n{tail}")
    per_test: dict[str, float] = defaultdict(float)
    for value, _, test in _DURATION.findall(out):
        per_test[test] += float(value)
    return seconds, dict(per_test)


def local_true_text() -> str:
    from azure.ai.ml import __version__
    from azure.ai.ml.constants._endpoint import LocalEndpointConstants

    wait = LocalEndpointConstants.DEFAULT_STARTUP_WAIT_TIME_SECONDS
    return LOCAL_TRUE.format(version=__version__, wait=wait, total=3 * wait)


def verdict(seconds: float, target: float) -> str:
    return f"{'MET' if seconds <= target else 'NOT MET'} (target <= {target:g} s)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="timed runs of each kind (the median is judged)")
    parser.add_argument("--skip-warmup", action="store_true", help="the environment cache is known to be warm")
    args = parser.parse_args()

    load = os.getloadavg()
    print(f"examples/ci-project, {TESTS} tests; {os.cpu_count()} cores, load average {load[0]:.1f} at the start")
    results: dict[str, list[float]] = defaultdict(list)
    steps: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="amlemu-bench-harness-") as tmp:
        work = Path(tmp)
        if not args.skip_warmup:
            seconds, _ = run_suite(work, "warm-up", True, None)
            print(f"warm-up run (untimed for the targets): {seconds:.1f} s")
        for n in range(args.runs):
            for label, parallel, cold in (("w1 warm, pytest", False, False), ("w2 warm, pytest -n 2", True, False),
                                          ("c  cold, pytest -n 2", True, True)):  # fmt: skip
                cache = work / f"env-cache-{n}" if cold else None
                seconds, per_test = run_suite(work, f"{label.split()[0]}-{n}", parallel, cache)
                results[label].append(seconds)
                steps[label] = per_test
                print(f"  run {n + 1}: {label:<22} {seconds:6.1f} s")
                if cache is not None:
                    shutil.rmtree(cache, ignore_errors=True)

    print("\nwall time of the suite (median):")
    for label, values in results.items():
        median = statistics.median(values)
        target = COLD_TARGET_S if label.startswith("c") else WARM_TARGET_S
        print(f"  {label:<22} {median:6.1f} s   {verdict(median, target)}")
    print("\nper test (setup + call + teardown, last run of each kind; -n 2 runs overlap them on two workers):")
    names = sorted({test for per_test in steps.values() for test in per_test})
    print(f"  {'test':<46}" + "".join(f"{label.split(',')[0]:>10}" for label in steps))
    for test in names:
        print(f"  {test:<46}" + "".join(f"{steps[label].get(test, 0.0):9.1f}s" for label in steps))
    print("\n" + local_true_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
