"""Median wall time of ``amlemu job create --file hello.yml --stream`` beside the bare command.

Both run in this one process, interleaved, so machine noise hits them alike:
  (a) amlemu: ``amlemu job create --file hello.yml --stream`` on the process runtime,
      end to end (CLI start, validation, snapshot, record, supervisor, the job, log
      streaming, final status);
  (b) baseline: the same ``echo`` command started directly (``bash -c``);
  (c) context: one bare Python interpreter start (``python -c pass``); amlemu needs two
      (the CLI and the job's supervisor), so about 2x (c) is the floor for this design;
  (d) with ``--docker``: (a) on the docker runtime (AMLEMU_RUNTIME=docker), cached image.

Usage: ./run bench job_latency [--runs N]      (default 15 runs each)
Target (issue 2): (a) under 1.0 s per job.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELLO = "command: echo hello world\nenvironment: azureml:AzureML-sklearn-1.5@latest\n"


def timed(cmd: list[str], env: dict, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--docker", action="store_true", help="also time the docker runtime")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="amlemu-bench-"))
    try:
        (work / "hello.yml").write_text(HELLO)
        env = {**os.environ, "AMLEMU_HOME": str(work / "home")}
        amlemu = [str(Path(sys.executable).parent / "amlemu"), "job", "create", "--file", "hello.yml", "--stream"]
        direct = ["/bin/bash", "-c", "echo hello world"]
        timed(amlemu, env, work)  # warm-up: creates the store
        python = [sys.executable, "-c", "pass"]
        a, b, c = [], [], []
        for _ in range(args.runs):
            a.append(timed(amlemu, env, work))
            b.append(timed(direct, env, work))
            c.append(timed(python, env, work))
        d = []
        if args.docker:
            denv = {**env, "AMLEMU_RUNTIME": "docker"}
            start = time.perf_counter()
            timed(amlemu, denv, work)  # builds the default job image on first use
            first = time.perf_counter() - start
            for _ in range(args.runs):
                d.append(timed(amlemu, denv, work))
        med_a, med_b = statistics.median(a), statistics.median(b)
        print(f"runs per side:                 {args.runs}")
        print(
            f"(a) amlemu job create --stream median {med_a * 1000:8.1f} ms  "
            f"(p90 {sorted(a)[int(0.9 * len(a)) - 1] * 1000:.1f} ms)"
        )
        print(f"(b) bash -c 'echo' directly    median {med_b * 1000:8.1f} ms")
        print(f"(c) python -c pass             median {statistics.median(c) * 1000:8.1f} ms")
        if d:
            print(
                f"(d) docker runtime, cached image median {statistics.median(d) * 1000:8.1f} ms  "
                f"(first run incl. any image build: {first:.1f} s)  target < 3000 ms: "
                f"{'MET' if statistics.median(d) < 3.0 else 'NOT MET'}"
            )
        print(f"ratio (a)/(b):                 {med_a / med_b:8.1f}x")
        print(f"target: (a) < 1000 ms          {'MET' if med_a < 1.0 else 'NOT MET'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
