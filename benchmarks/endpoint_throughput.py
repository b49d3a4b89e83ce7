"""Requests/s and latency of the iris ONNX model served three ways, under one load generator.

All three run in this one process, one after the other, on the same model, request body
and connection count (emulator.testing.load, keep-alive, loopback):
  (a) amlemu: an online endpoint (key auth, one deployment with 2 instances, the built-in
      ONNX scorer) through its scoring URI, created with the azure-ai-ml-shaped API; the
      time for the deployment create to return is reported as "deployment ready". Measured
      twice: with Azure's default request settings (max_concurrent_requests_per_instance 1,
      like (b)'s one-request-at-a-time sync workers) and tuned (--tuned-concurrency, 4);
  (b) baseline: Azure's own ``azureml-inference-server-http`` (gunicorn, 2 workers, the
      same number as (a)'s instances) running sample_models/iris/score/score.py, from a
      virtualenv cached in ``$AMLEMU_HOME/cache/bench/aisrv`` (made on first use);
  (c) limit: ONNX Runtime ``session.run`` on one row in a loop in this process.
The model comes from running sample_models/iris/src/train.py in a temp folder.
The machine has 2 cores: the load generator shares them with the server under test, the
same for (a) and (b); compare the figures of one run, as ratios.

Usage: ./run bench endpoint_throughput [--connections 8] [--duration 10] [--tuned-concurrency 4]
                                      [--skip-amlemu] [--json]
Targets: (a) >= 2x (b) requests/s; (a) p99 <= 5 ms at 8 connections; deployment ready <= 5 s.
Exits non-zero when a request in (a) or (b) failed or answered wrongly.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emulator import config
from emulator.testing import percentile, run_load
from emulator.tracking.filestore import TRACKING_ENV

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "sample_models" / "iris"
ROW = [5.1, 3.5, 1.4, 0.2]
BODY = json.dumps({"data": [ROW]}).encode()
EXPECTED = [0]  # setosa
INSTANCES = 2
AISRV_VERSION = "1.5.1"
AISRV_PACKAGES = [f"azureml-inference-server-http=={AISRV_VERSION}", "onnxruntime", "numpy"]
# azmlinfsrv always binds 0.0.0.0 (constants.DEFAULT_HOST, no flag or variable changes it); this
# project binds loopback only, so the server is started through its own entry point with that
# one constant set to 127.0.0.1 - every other setting is the stock one.
AISRV_LAUNCHER = (
    "import sys, azureml_inference_server_http.constants as c; c.DEFAULT_HOST = '127.0.0.1'; "
    "from azureml_inference_server_http.amlserver import run; sys.exit(run())"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_model(work: Path) -> Path:
    """Runs the sample training script; returns the folder holding model.onnx."""
    train_dir = work / "train"
    train_dir.mkdir()
    env = {**os.environ, **TRACKING_ENV, "MLFLOW_TRACKING_URI": (work / "mlruns").as_uri()}
    proc = subprocess.run(
        [sys.executable, str(IRIS / "src" / "train.py"), "--C", "1.0", "--max_iter", "200"],
        cwd=train_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"train.py exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return train_dir / "outputs"


def measure(url: str, args, headers: dict | None = None) -> dict:
    """Warms up, then loads ``url`` for the run's duration; the figures plus an answer check."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    run_load(url, connections=args.connections, requests=200, headers=headers, body=BODY)
    result = run_load(
        url,
        connections=args.connections,
        duration=args.duration,
        headers=headers,
        body=BODY,
        keep_samples=1,
        header_to_count="azureml-model-deployment",
    )
    figures = result.summary()
    answer = json.loads(result.samples[0].body) if result.samples and result.samples[0].status == 200 else None
    figures["answer_ok"] = answer == EXPECTED
    if result.error_samples:
        first = result.error_samples[0]
        figures["first_error"] = first.error or f"{first.status}: {first.body[:200].decode(errors='replace')}"
    return figures


def bench_amlemu(model_dir: Path, work: Path, args, per_instance: int = 1) -> dict:
    """(a): an online endpoint in a throwaway AMLEMU_HOME, loaded through its scoring URI."""
    os.environ["AMLEMU_HOME"] = str(work / "amlemu-home")
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint, Model, OnlineRequestSettings

    from backends import connect

    ml_client = connect("local")
    model = ml_client.models.create_or_update(Model(name="iris-bench", path=str(model_dir), type="custom_model"))
    endpoint = ManagedOnlineEndpoint(name="iris-bench", auth_mode="key")
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    try:
        settings = OnlineRequestSettings(max_concurrent_requests_per_instance=per_instance)
        deployment = ManagedOnlineDeployment(
            name="blue", endpoint_name="iris-bench", model=model, instance_count=INSTANCES, request_settings=settings
        )
        start = time.perf_counter()
        ml_client.online_deployments.begin_create_or_update(deployment).result()
        ready_s = time.perf_counter() - start
        endpoint.traffic = {"blue": 100}
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
        uri = ml_client.online_endpoints.get("iris-bench").scoring_uri
        key = ml_client.online_endpoints.get_keys("iris-bench").primary_key
        log(
            f"(a) {per_instance} concurrent request(s) per instance: deployment ready in {ready_s:.2f} s; "
            f"loading {uri} for {args.duration:g} s ..."
        )
        figures = measure(uri, args, {"Authorization": f"Bearer {key}"})
        figures["deployment_ready_s"] = round(ready_s, 3)
        return figures
    finally:
        try:
            ml_client.online_endpoints.begin_delete("iris-bench").result()
        except Exception as exc:  # noqa: BLE001 - do not hide the error that got us here
            log(f"(a) deleting the endpoint failed: {type(exc).__name__}: {exc}")


def aisrv_venv(root: Path) -> Path:
    """The cached virtualenv holding azureml-inference-server-http; made on first use."""
    stamp = root / ".installed"
    want = " ".join(AISRV_PACKAGES)
    if stamp.is_file() and stamp.read_text() == want:
        return root
    shutil.rmtree(root, ignore_errors=True)
    log(f"(b) creating {root} with {want} (first use only) ...")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    pip = subprocess.run(
        [str(root / "bin" / "python"), "-m", "pip", "install", "-q", *AISRV_PACKAGES], capture_output=True, text=True
    )
    if pip.returncode != 0:
        raise RuntimeError(f"pip install {want} into {root} failed:\n{pip.stderr[-2000:]}")
    stamp.write_text(want)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_aisrv(model_dir: Path, work: Path, venv: Path, args) -> dict:
    """(b): azmlinfsrv with INSTANCES gunicorn workers on 127.0.0.1, stopped at the end."""
    port = free_port()
    server_log = work / "aisrv.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZUREML_", "AML_", "WORKER_"))}
    cmd = [
        str(venv / "bin" / "python"),
        "-c",
        AISRV_LAUNCHER,
        "--entry_script",
        str(IRIS / "score" / "score.py"),
        "--model_dir",
        str(model_dir),
        "--port",
        str(port),
        "--worker_count",
        str(INSTANCES),
    ]
    with open(server_log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while run_load(f"http://127.0.0.1:{port}/", connections=1, requests=1, method="GET").by_status != {200: 1}:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = server_log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"azmlinfsrv did not answer GET / on port {port}; its log ends:\n{tail}")
            time.sleep(0.2)
        log(f"(b) azmlinfsrv {AISRV_VERSION} up on 127.0.0.1:{port}; loading /score for {args.duration:g} s ...")
        return measure(f"http://127.0.0.1:{port}/score", args)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its own process group: gunicorn's master and workers
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def bench_in_process(model_dir: Path, args) -> dict:
    """(c): ONNX Runtime on one row in a loop, no HTTP at all."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.asarray([ROW], dtype=np.float32)}
    answer = [int(v) for v in session.run(None, feed)[0]]
    latencies = []
    clock = time.perf_counter
    start = clock()
    deadline = start + args.duration
    while (t0 := clock()) < deadline:
        session.run(None, feed)
        latencies.append((clock() - t0) * 1000.0)
    wall = clock() - start
    latencies.sort()
    return {
        "total": len(latencies),
        "errors": 0,
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50), 4),
        "p99_ms": round(percentile(latencies, 99), 4),
        "wall_s": round(wall, 3),
        "answer_ok": answer == EXPECTED,
    }


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "NOT MET")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load for each of (a)(b)(c)")
    parser.add_argument("--skip-amlemu", action="store_true", help="measure only (b) and (c)")
    parser.add_argument(
        "--tuned-concurrency",
        type=int,
        default=4,
        help="max_concurrent_requests_per_instance of the tuned (a) run (0: skip it)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    aisrv_root = config.cache_dir() / "bench" / "aisrv"  # the user's cache, before AMLEMU_HOME moves
    work = Path(tempfile.mkdtemp(prefix="amlemu-bench-"))
    saved_home = os.environ.get("AMLEMU_HOME")
    report: dict = {"connections": args.connections, "duration_s": args.duration, "instances": INSTANCES}
    failed = False
    try:
        log("training the iris model ...")
        model_dir = train_model(work)
        if args.skip_amlemu:
            report["a"] = {"unavailable": "skipped (--skip-amlemu)"}
        else:
            try:
                report["a"] = bench_amlemu(model_dir, work, args)
                if args.tuned_concurrency:
                    report["a_tuned"] = bench_amlemu(model_dir, work, args, args.tuned_concurrency)
                    report["a_tuned"]["max_concurrent_requests_per_instance"] = args.tuned_concurrency
            except Exception as exc:  # noqa: BLE001 - reported, and the other two still run
                report["a"] = {"unavailable": f"{type(exc).__name__}: {exc}"}
                failed |= getattr(exc, "code", None) != "NotEmulated"  # not built yet is no failure
            finally:
                if saved_home is None:
                    os.environ.pop("AMLEMU_HOME", None)
                else:
                    os.environ["AMLEMU_HOME"] = saved_home
        report["b"] = bench_aisrv(model_dir, work, aisrv_venv(aisrv_root), args)
        report["b"]["server"] = f"azureml-inference-server-http {AISRV_VERSION}, {INSTANCES} workers"
        log(f"(c) ONNX Runtime in process for {args.duration:g} s ...")
        report["c"] = bench_in_process(model_dir, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    a, b, c = report["a"], report["b"], report["c"]
    has_a = "unavailable" not in a
    tuned = report.get("a_tuned")
    for side in [s for s in (a, tuned) if s and has_a] + [b]:
        failed |= side["errors"] > 0 or not side["answer_ok"]
    report["ratios"] = {
        "a_over_b_throughput": round(a["throughput_rps"] / b["throughput_rps"], 2) if has_a else None,
        "c_over_a_throughput": round(c["throughput_rps"] / a["throughput_rps"], 2) if has_a else None,
        "c_over_b_throughput": round(c["throughput_rps"] / b["throughput_rps"], 2),
    }
    if tuned:
        report["ratios"]["a_tuned_over_b_throughput"] = round(tuned["throughput_rps"] / b["throughput_rps"], 2)
    report["targets"] = {
        "a_throughput_at_least_2x_b": (report["ratios"]["a_over_b_throughput"] >= 2) if has_a else None,
        "a_p99_at_most_5_ms": (a["p99_ms"] <= 5.0) if has_a else None,
        "deployment_ready_at_most_5_s": (a["deployment_ready_s"] <= 5.0) if has_a else None,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 1 if failed else 0


def print_table(report: dict) -> None:
    a, b, c, ratios, targets = (report[k] for k in ("a", "b", "c", "ratios", "targets"))
    print(
        f"iris ONNX model, one row per request, {report['connections']} connections, "
        f"{report['duration_s']:g} s each, {os.cpu_count()} cores"
    )
    print(f"{'':54}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    rows = [(f"(a) amlemu online endpoint, {INSTANCES} instances, 1 req each", a)]
    if report.get("a_tuned"):
        rows.append(
            (
                f"(a') same, max_concurrent_requests_per_instance "
                f"{report['a_tuned']['max_concurrent_requests_per_instance']}",
                report["a_tuned"],
            )
        )
    rows += [(f"(b) {b['server']}", b), ("(c) ONNX Runtime in process, one caller", c)]
    for label, side in rows:
        if "unavailable" in side:
            print(f"(a) unavailable: {side['unavailable']}")
            continue
        wrong = "" if side["answer_ok"] else "  WRONG ANSWER"
        print(
            f"{label:54}{side['throughput_rps']:10,.0f}{side['p50_ms']:10.3f}{side['p99_ms']:10.3f}"
            f"{side['errors']:8}{wrong}"
        )
        if side.get("first_error"):
            print(f"    first error: {side['first_error']}")
    if "unavailable" not in a:
        print(
            f"deployment ready:             {a['deployment_ready_s']:6.2f} s    target <= 5 s: "
            f"{verdict(targets['deployment_ready_at_most_5_s'])}"
        )
        print(
            f"ratio (a)/(b) requests/s:     {ratios['a_over_b_throughput']:6.2f}x    target >= 2x: "
            f"{verdict(targets['a_throughput_at_least_2x_b'])}"
        )
        print(
            f"(a) p99:                      {a['p99_ms']:6.2f} ms   target <= 5 ms at 8 connections: "
            f"{verdict(targets['a_p99_at_most_5_ms'])}"
        )
        if "a_tuned_over_b_throughput" in ratios:
            tuned = report["a_tuned"]
            print(
                f"ratio (a')/(b) requests/s:    {ratios['a_tuned_over_b_throughput']:6.2f}x    target >= 2x: "
                f"{verdict(ratios['a_tuned_over_b_throughput'] >= 2)};  (a') p99 {tuned['p99_ms']:.2f} ms"
            )
        print(f"ratio (c)/(a) requests/s:     {ratios['c_over_a_throughput']:6.2f}x")
    else:
        print("targets ((a) >= 2x (b) req/s, (a) p99 <= 5 ms, deployment ready <= 5 s): n/a without (a)")
    print(f"ratio (c)/(b) requests/s:     {ratios['c_over_b_throughput']:6.2f}x")


if __name__ == "__main__":
    sys.exit(main())
