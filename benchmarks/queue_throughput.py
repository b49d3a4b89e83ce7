"""Queue throughput: 100 tiny command jobs through a 2-node compute cluster, beside the bare commands.

Both run in this one process, one after the other, so machine noise hits them alike:
  (a) amlemu: the jobs are submitted one after another as ``ml_client.jobs.create_or_update`` sends
      them (``kinds.submit``: validation, code snapshot, record, a supervisor per job), to a
      cluster of ``--nodes`` warm nodes; each waits ``Queued`` for a node, in submission order.
      Measured from the first submission to the last job's end as recorded;
  (b) baseline: the same command run ``--nodes`` at a time by a plain pool (``bash -c``), no
      emulator: the floor for this machine.
The ratio (a)/(b) is the cost of the queue, the records and the supervisors. The run also checks
that every job completed and that no job started before one submitted earlier.

Usage: ./run bench queue_throughput [--jobs 100] [--nodes 2] [--command 'python -c pass']
Issue 5 asks for this figure (no target is set).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--command", default="python -c pass", help="each job's command (default: a tiny Python job)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="amlemu-queue-bench-"))
    os.environ["AMLEMU_HOME"] = str(work / "home")
    from emulator import kinds
    from emulator.compute import service as computes
    from emulator.jobs import lifecycle, submission
    from emulator.store import open_store

    store = open_store()
    computes.create_or_update(
        store,
        {
            "name": "bench-cluster",
            "type": "amlcompute",
            "size": "Standard_DS3_v2",
            "min_instances": args.nodes,
            "max_instances": args.nodes,
        },
    )
    spec = {"command": args.command, "environment": "azureml:AzureML-sklearn-1.5@latest", "compute": "bench-cluster"}

    # (b) first: the bare commands, nodes at a time
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    start = time.time()
    with ThreadPoolExecutor(args.nodes) as pool:
        codes = list(
            pool.map(
                lambda _: (
                    subprocess.run(["/bin/bash", "-c", args.command], env=env, stdout=subprocess.DEVNULL).returncode
                ),
                range(args.jobs),
            )
        )
    bare = time.time() - start
    assert codes == [0] * args.jobs, codes

    # (a) amlemu
    start = time.time()
    names = [kinds.submit(store, dict(spec), work)["name"] for _ in range(args.jobs)]
    submitted = time.time() - start
    jobs = [lifecycle.wait(store, name, timeout=600) for name in names]
    for child in submission._children:
        child.wait()
    wall = max(j["ended_at"] for j in jobs) - start
    failed = [j for j in jobs if j["status"] != "Completed"]
    if failed:
        print(
            f"{len(failed)} job(s) did not complete; the first: {failed[0]['name']} {failed[0]['status']}: "
            f"{failed[0]['error']}",
            file=sys.stderr,
        )
        return 1
    starts = [j["started_at"] for j in jobs]
    in_order = starts == sorted(starts)
    print(
        f"{args.jobs} jobs of `{args.command}` on a cluster of {args.nodes} warm nodes "
        f"({os.cpu_count()} cores; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    print(
        f"  (a) amlemu     {wall:6.2f} s   {args.jobs / wall:6.1f} jobs/s   "
        f"(submitting took {submitted:.2f} s, {submitted / args.jobs * 1000:.0f} ms a job)"
    )
    print(f"  (b) baseline   {bare:6.2f} s   {args.jobs / bare:6.1f} jobs/s   (the commands, {args.nodes} at a time)")
    print(
        f"  ratio (a)/(b)  {wall / bare:6.2f} x   per job: {(wall - bare) / args.jobs * 1000:.0f} ms more "
        f"than the bare command"
    )
    print(f"  all {args.jobs} completed; started in submission order: {'yes' if in_order else 'NO'}")
    return 0 if in_order else 1


if __name__ == "__main__":
    sys.exit(main())
