"""Wall time of a sweep of 40 trials of 0.5 s, 4 at a time, against the ideal 40 x 0.5 / 4 = 5 s.

The sweep goes through the engine as ``amlemu job create`` sends it (``kinds.submit``): a
detached orchestrator, each trial a child command job with its own supervisor and process. The
wall time is the sweep's record: from submission to its end (Completed). Each trial sleeps
0.5 s and logs its metric; by default (``emulator.testing.trials.SLEEPER``) it appends the metric
to its MLflow run's file as ``mlflow.log_metric`` does, without importing MLflow (about 1.5 s of CPU per trial on this
machine class, which would measure MLflow's import, not the sweep); ``--mlflow`` uses
``mlflow.log_metric`` itself.

``--cluster`` creates a compute cluster of ``--concurrency`` warm nodes (min_instances =
max_instances) and runs the trials on it. The load average is printed with the figures: on a
small machine shared with other work it moves them by tenths.

Usage: ./run bench sweep_wall_time [--trials 40] [--concurrency 4] [--seconds 0.5] [--mlflow]
       [--cluster | --compute NAME] [--timeline] [--repeat N [--pause S]]
Target (issue 5): within 1.15x of the ideal on a 4-node cluster.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WITH_MLFLOW = """\
import sys, time
import mlflow
time.sleep(float(sys.argv[1]))
mlflow.log_metric("accuracy", float(sys.argv[2]))
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--mlflow", action="store_true", help="log with mlflow.log_metric (imports MLflow)")
    parser.add_argument("--compute", help="run the trials on this compute cluster")
    parser.add_argument(
        "--cluster", action="store_true", help="create a cluster of --concurrency warm nodes and run the trials on it"
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print each trial's submit, start and end, in seconds from the sweep's submission",
    )
    parser.add_argument("--repeat", type=int, default=1, help="run the sweep this many times; report the median")
    parser.add_argument("--pause", type=float, default=10.0, help="seconds between repeated runs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="amlemu-sweep-bench-"))
    os.environ["AMLEMU_HOME"] = str(work / "home")
    from emulator.compute import service as computes
    from emulator.store import open_store
    from emulator.testing.trials import SLEEPER

    (work / "src").mkdir()
    (work / "src" / "trial.py").write_text(WITH_MLFLOW if args.mlflow else SLEEPER)
    store = open_store()
    if args.cluster:
        args.compute = "bench-cluster"
        computes.create_or_update(
            store,
            {
                "name": args.compute,
                "type": "amlcompute",
                "size": "Standard_DS3_v2",
                "min_instances": args.concurrency,
                "max_instances": args.concurrency,
            },
        )
    ratios = []
    for run in range(1, args.repeat + 1):
        if run > 1:
            time.sleep(args.pause)  # let the load of the previous run settle
        ratio = sweep_once(store, work, args, f"bench{run}" if args.repeat > 1 else "bench")
        if ratio is None:
            return 1
        ratios.append(ratio)
    if args.repeat > 1:
        print(
            f"{args.repeat} runs: ratio median {statistics.median(ratios):.2f} x, min {min(ratios):.2f} x, "
            f"max {max(ratios):.2f} x; {sum(r <= 1.15 for r in ratios)} of {args.repeat} within 1.15 x"
        )
    return 0


def sweep_once(store, work: Path, args, name: str) -> float | None:
    from emulator import kinds
    from emulator.jobs import lifecycle, submission

    data = {
        "type": "sweep",
        "name": name,
        "trial": {
            "code": "./src",
            "command": f"python trial.py {args.seconds} ${{{{search_space.x}}}}",
            "environment": "azureml:AzureML-sklearn-1.5@latest",
        },
        "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        "sampling_algorithm": {"type": "random", "seed": 1},
        "objective": {"goal": "maximize", "primary_metric": "accuracy"},
        "limits": {"max_total_trials": args.trials, "max_concurrent_trials": args.concurrency},
    }
    if args.compute:
        data["compute"] = args.compute
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    job = kinds.submit(store, data, work)
    job = lifecycle.wait(store, job["name"], timeout=600)
    for child in submission._children:  # reap the orchestrator, so its CPU time (and its reaped trials') counts
        child.wait()
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    if job["status"] != "Completed":
        print(f"the sweep ended {job['status']}: {job['error']}", file=sys.stderr)
        return None
    trials = store.list_jobs(name)
    wall = job["ended_at"] - job["created_at"]
    ideal = args.trials * args.seconds / args.concurrency
    trial_walls = [t["ended_at"] - t["created_at"] for t in trials]
    runs = [t["ended_at"] - t["started_at"] for t in trials if t["started_at"]]
    # a slot's idle time: from a trial's end to the start of the next one to start (after the first wave)
    starts = sorted(t["started_at"] for t in trials)[args.concurrency :]
    ends = sorted(t["ended_at"] for t in trials)[: len(starts)]
    gaps = [start - end for start, end in zip(starts, ends)]
    first = min(t["started_at"] for t in trials) - job["created_at"]
    overlap = max(sum(1 for t in trials if t["started_at"] <= u["started_at"] < t["ended_at"]) for u in trials)
    print(
        f"sweep of {args.trials} trials of {args.seconds} s, {args.concurrency} at a time "
        f"({'mlflow.log_metric' if args.mlflow else 'metric appended without MLflow'}; "
        f"compute: {args.compute or 'local'}; {os.cpu_count()} cores; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    print(f"  wall time           {wall:6.2f} s")
    print(f"  ideal               {ideal:6.2f} s")
    print(f"  ratio               {wall / ideal:6.2f} x   (target <= 1.15 x on a 4-node cluster)")
    print(
        f"  per trial, submit to end: median {statistics.median(trial_walls):.3f} s, "
        f"max {max(trial_walls):.3f} s; running: median {statistics.median(runs):.3f} s"
    )
    print(
        f"  sweep submitted to first trial running: {first:.3f} s; a slot idle between trials: "
        f"median {statistics.median(gaps) * 1000:.0f} ms, max {max(gaps) * 1000:.0f} ms; "
        f"at most {overlap} trials running at once"
    )
    if args.timeline:
        t0 = job["created_at"]
        for t in sorted(trials, key=lambda t: t["created_at"]):
            print(
                f"    {t['name']:>10}  submitted {t['created_at'] - t0:6.3f}  started {t['started_at'] - t0:6.3f}  "
                f"ended {t['ended_at'] - t0:6.3f}"
            )
        print(f"    {'sweep':>10}  ended {wall:6.3f}")
    used = cpu.ru_utime + cpu.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    print(f"  CPU (orchestrator, supervisors, trials): {used:.2f} s, {used / args.trials * 1000:.0f} ms per trial")
    return wall / ideal


if __name__ == "__main__":
    sys.exit(main())
