"""The front door's overhead over ``connect()``, scenario by scenario, side by side in one run.

Each scenario runs in a fresh Python process (as a user's script does), alternately through
``connect()`` (the local backend in process) and through ``amlemu serve`` (the real
``MLClient`` with ``DefaultAzureCredential``, configured by ``amlemu env``), on the same
machine state; the clock includes building the client:

  (1) submit an echo command job and stream it to the end;
  (2) register a model from a local ONNX file (the SDK uploads it through the blob service);
  (3) create an endpoint and a deployment (built-in ONNX scorer) until both are ready.

Usage: ./run bench front_door [--runs N]      (default 5 runs of each, median reported)
Target (issue 13): the front door adds at most 1 s to each scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIO = HERE / "front_door_scenarios" / "scenario.py"
TARGET_S = 1.0


def free_base_port() -> int:
    import random
    import socket

    for _ in range(200):
        base, held = random.randint(20000, 60000), []
        try:
            for port in range(base, base + 3):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no three free ports")


def iris_onnx(folder: Path) -> Path:
    """The iris model, trained and exported as the samples do (outside any clock)."""
    out = folder / "iris-model"
    subprocess.run(
        [sys.executable, str(ROOT / "sample_models" / "iris" / "src" / "train.py"), "--max_iter", "200"],
        cwd=folder,
        env={**os.environ, "MLFLOW_TRACKING_URI": (folder / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"},
        check=True,
        capture_output=True,
    )
    (folder / "outputs").rename(out)
    return out / "model.onnx"


def run(scenario: str, via: str, env: dict, workspace: str, onnx: Path, cwd: Path) -> float:
    proc = subprocess.run(
        [sys.executable, str(SCENARIO), scenario, "--via", via, "--workspace", workspace, "--onnx", str(onnx)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{scenario} via {via} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    marked = [line.split("BENCH ", 1)[1] for line in proc.stdout.splitlines() if "BENCH " in line]
    if not marked:
        raise SystemExit(f"{scenario} via {via} printed no result:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return json.loads(marked[-1])["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="amlemu-bench-fd-"))
    home = work / "home"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AMLEMU_", "MLFLOW_"))}
    base.update(AMLEMU_HOME=str(home), PYTHONPATH=str(ROOT))
    port = free_base_port()
    log = open(work / "serve.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli.main", "serve", "--port", str(port)], env=base, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while b"Ctrl-C" not in (work / "serve.log").read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"amlemu serve did not start:\n{(work / 'serve.log').read_text()}")
            time.sleep(0.1)
        out = subprocess.run(
            [sys.executable, "-m", "emulator.cli.main", "env", "--port", str(port), "--format", "dotenv"],
            env=base,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        front = {**base, **dict(line.split("=", 1) for line in out.splitlines() if line)}
        onnx = iris_onnx(work)
        for ws in ("bench-local", "bench-front"):  # the served model, and a first job to build the environment
            subprocess.run(
                [sys.executable, "-m", "emulator.cli.main", "model", "create", "-n", "bench-served",
                 "-p", str(onnx), "-w", ws], env=base, check=True, capture_output=True)  # fmt: skip
        print(f"warming up (environment build, first job) in {work} ...", flush=True)
        run("job", "local", base, "bench-local", onnx, work)
        run("job", "front-door", front, "bench-front", onnx, work)
        rows = []
        for scenario in ("job", "model", "endpoint"):
            local, door = [], []
            for _ in range(args.runs):
                local.append(run(scenario, "local", base, "bench-local", onnx, work))
                door.append(run(scenario, "front-door", front, "bench-front", onnx, work))
            rows.append((scenario, statistics.median(local), statistics.median(door)))
        load = os.getloadavg()[0]
        print(f"\nfront door overhead, median of {args.runs} runs each (load {load:.1f}, {os.cpu_count()} cores)")
        print(f"{'scenario':<42}{'connect()':>11}{'front door':>12}{'overhead':>10}  target <= {TARGET_S:.1f} s")
        names = {
            "job": "(1) echo job: submit + stream",
            "model": "(2) model from a local file",
            "endpoint": "(3) endpoint + deployment until ready",
        }
        met = True
        for scenario, lo, fd in rows:
            over = fd - lo
            ok = over <= TARGET_S
            met &= ok
            print(f"{names[scenario]:<42}{lo:>10.2f}s{fd:>11.2f}s{over:>9.2f}s  {'MET' if ok else 'NOT MET'}")
        return 0 if met else 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        for ws in ("bench-local", "bench-front"):
            subprocess.run(
                [sys.executable, "-m", "emulator.cli.main", "system", "stop", "-w", ws], env=base, capture_output=True
            )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
