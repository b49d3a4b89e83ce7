"""Requests/s, latency and CPU per request of the iris ONNX model served three ways, under one load generator.

All three run in this one process, one after the other, on the same model, request body
and connection count (emulator.testing.load, keep-alive, loopback):
  (a) amlemu: an online endpoint (key auth, one deployment, the built-in ONNX scorer) through
      its scoring URI, created with the azure-ai-ml-shaped API, at Azure's default request
      settings (max_concurrent_requests_per_instance 1, like (b)'s one-request-at-a-time sync
      workers), with N instances for each N of --instances (1 and 2); the time for the
      deployment create to return is reported as "deployment ready". With --tuned-concurrency,
      once more with that many concurrent requests per instance, at the largest N;
  (b) baseline: Azure's own ``azureml-inference-server-http`` (gunicorn, N workers, as Azure
      runs one worker per instance) running sample_models/iris/score/score.py, from a
      virtualenv cached in ``$AMLEMU_HOME/cache/bench/aisrv`` (made on first use);
  (c) limit: ONNX Runtime ``session.run`` on one row in a loop in this process.
CPU per request comes from /proc (user + system time of each process over the load, divided by
the requests answered): for (a) the endpoint host (the gateway) and the replicas (each with its
children), for (b) gunicorn's master and workers, and for both the load generator (this process).
The model comes from running sample_models/iris/src/train.py in a temp folder.
The machine has 2 cores: the load generator shares them with the server under test, the
same for (a) and (b); compare the figures of one run, as ratios. The load average and the
CPU time stolen by the hypervisor during the run say how quiet the machine was.

Usage: ./run bench endpoint_throughput [--instances 1,2] [--connections 8] [--duration 10]
                                      [--tuned-concurrency 0] [--skip-amlemu] [--json]
Targets, for each N: (a) >= 2x (b) requests/s; (a) p99 <= 5 ms at 8 connections (on a quiet
machine) and <= 0.5x (b)'s p99; CPU per request of the gateway and of a replica (see CPU_TARGETS);
deployment ready <= 5 s.
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
from emulator.runtime.proctree import descendants
from emulator.testing import percentile, run_load
from emulator.tracking.filestore import TRACKING_ENV

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "sample_models" / "iris"
ROW = [5.1, 3.5, 1.4, 0.2]
BODY = json.dumps({"data": [ROW]}).encode()
EXPECTED = [0]  # setosa
INSTANCES = (1, 2)
#: CPU per request of the gateway (the endpoint host) and of a replica, in units of the load generator's own CPU
#: per request in the same run: a fixed piece of work (one request written and one answer parsed over TCP) that
#: slows down as the machine does, so the targets hold on a busy machine too. Where the time goes: a replica does
#: the load generator's socket work plus parsing and scoring (ONNX Runtime ~15 µs, JSON and input checks ~30 µs);
#: the gateway twice the socket work (client and replica) plus parsing, auth and routing. Before the direct
#: server (granian and Flask in each replica): replica 4.5-6.9, gateway 2.3-2.6.
CPU_TARGETS = {"gateway": 2.5, "replica": 2.5}
P99_TARGET_MS = 5.0
P99_RATIO_TARGET = 0.5
THROUGHPUT_RATIO_TARGET = 2.0
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (all their threads), from /proc/<pid>/stat."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def with_children(pids: list[int]) -> list[int]:
    return [p for pid in pids for p in (pid, *descendants(pid))]


def steal_ticks() -> tuple[int, int]:
    """(stolen, total) CPU ticks of the machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[7] if len(values) > 7 else 0, sum(values[:8])


def measure(url: str, args, headers: dict | None = None, groups: dict[str, list[int]] | None = None) -> dict:
    """Warms up, then loads ``url`` for the run's duration; the figures, CPU per request of each process
    group (µs) and of the load generator, and an answer check."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    run_load(url, connections=args.connections, requests=200, headers=headers, body=BODY)
    groups = groups or {}
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    own_before = time.process_time()
    result = run_load(
        url,
        connections=args.connections,
        duration=args.duration,
        headers=headers,
        body=BODY,
        keep_samples=1,
        header_to_count="azureml-model-deployment",
    )
    own = time.process_time() - own_before
    figures = result.summary()
    answered = max(result.total, 1)
    figures["cpu_us_per_request"] = {
        **{name: round(1e6 * (cpu_seconds(pids) - before[name]) / answered, 1) for name, pids in groups.items()},
        "load_generator": round(1e6 * own / answered, 1),
    }
    answer = json.loads(result.samples[0].body) if result.samples and result.samples[0].status == 200 else None
    figures["answer_ok"] = answer == EXPECTED
    if result.error_samples:
        first = result.error_samples[0]
        figures["first_error"] = first.error or f"{first.status}: {first.body[:200].decode(errors='replace')}"
    return figures


def bench_amlemu(model_dir: Path, work: Path, args, instances: int, per_instance: int = 1) -> dict:
    """(a): an online endpoint in a throwaway AMLEMU_HOME, loaded through its scoring URI."""
    os.environ["AMLEMU_HOME"] = str(work / "amlemu-home")
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint, Model, OnlineRequestSettings

    from backends import connect
    from emulator.endpoints import service
    from emulator.store import open_store

    ml_client = connect("local")
    model = ml_client.models.create_or_update(Model(name="iris-bench", path=str(model_dir), type="custom_model"))
    endpoint = ManagedOnlineEndpoint(name="iris-bench", auth_mode="key")
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    try:
        settings = OnlineRequestSettings(max_concurrent_requests_per_instance=per_instance)
        deployment = ManagedOnlineDeployment(
            name="blue", endpoint_name="iris-bench", model=model, instance_count=instances, request_settings=settings
        )
        start = time.perf_counter()
        ml_client.online_deployments.begin_create_or_update(deployment).result()
        ready_s = time.perf_counter() - start
        endpoint.traffic = {"blue": 100}
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
        uri = ml_client.online_endpoints.get("iris-bench").scoring_uri
        key = ml_client.online_endpoints.get_keys("iris-bench").primary_key
        store = open_store()
        replicas = service.status(store, "iris-bench")["deployments"]["blue"]["replicas"]
        groups = {
            "gateway": [service.host_state(store, "iris-bench")["pid"]],
            "replicas": with_children([r["pid"] for r in replicas]),
        }
        log(
            f"(a) {instances} instance(s), {per_instance} concurrent request(s) per instance: deployment ready in "
            f"{ready_s:.2f} s; replicas reached over {', '.join(sorted({r.get('channel', 'tcp') for r in replicas}))};"
            f" loading {uri} for {args.duration:g} s ..."
        )
        figures = measure(uri, args, {"Authorization": f"Bearer {key}"}, groups)
        cpu = figures["cpu_us_per_request"]
        cpu["replica"] = cpu.pop("replicas")  # every request is answered by exactly one replica
        figures["deployment_ready_s"] = round(ready_s, 3)
        figures["instances"] = instances
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


def bench_aisrv(model_dir: Path, work: Path, venv: Path, args, workers: int) -> dict:
    """(b): azmlinfsrv with ``workers`` gunicorn workers on 127.0.0.1, stopped at the end."""
    port = free_port()
    server_log = work / f"aisrv-{workers}.log"
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
        str(workers),
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
        log(f"(b) azmlinfsrv {AISRV_VERSION}, {workers} worker(s) on 127.0.0.1:{port}; loading /score ...")
        figures = measure(f"http://127.0.0.1:{port}/score", args, groups={"server": with_children([proc.pid])})
        figures["server"] = f"azureml-inference-server-http {AISRV_VERSION}, {workers} worker(s)"
        figures["instances"] = workers
        return figures
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


def judge(report: dict) -> None:
    """Adds the ratios and the targets (True: met) of each N to the report."""
    for n in report["instances"]:
        a, b = report["a"].get(str(n)), report["b"][str(n)]
        if not a or "unavailable" in a:
            continue
        cpu = a["cpu_us_per_request"]
        ratios = {
            "throughput_a_over_b": round(a["throughput_rps"] / b["throughput_rps"], 2),
            "p99_a_over_b": round(a["p99_ms"] / b["p99_ms"], 2),
        }
        report["ratios"][str(n)] = ratios
        report["targets"][str(n)] = {
            f"a_throughput_at_least_{THROUGHPUT_RATIO_TARGET:g}x_b": ratios["throughput_a_over_b"]
            >= THROUGHPUT_RATIO_TARGET,
            f"a_p99_at_most_{P99_TARGET_MS:g}_ms": a["p99_ms"] <= P99_TARGET_MS,
            f"a_p99_at_most_{P99_RATIO_TARGET:g}x_b": ratios["p99_a_over_b"] <= P99_RATIO_TARGET,
            f"gateway_cpu_at_most_{CPU_TARGETS['gateway']:g}x_load_generator": cpu["gateway"]
            <= CPU_TARGETS["gateway"] * cpu["load_generator"],
            f"replica_cpu_at_most_{CPU_TARGETS['replica']:g}x_load_generator": cpu["replica"]
            <= CPU_TARGETS["replica"] * cpu["load_generator"],
            "deployment_ready_at_most_5_s": a["deployment_ready_s"] <= 5.0,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", default=",".join(map(str, INSTANCES)), help="N values, comma-separated")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load for each measurement")
    parser.add_argument("--skip-amlemu", action="store_true", help="measure only (b) and (c)")
    parser.add_argument(
        "--tuned-concurrency",
        type=int,
        default=0,
        help="max_concurrent_requests_per_instance of an extra (a) run at the largest N (0, the default: none)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    instances = sorted({int(n) for n in args.instances.split(",") if n.strip()})
    aisrv_root = config.cache_dir() / "bench" / "aisrv"  # the user's cache, before AMLEMU_HOME moves
    work = Path(tempfile.mkdtemp(prefix="amlemu-bench-"))
    saved_home = os.environ.get("AMLEMU_HOME")
    report: dict = {
        "connections": args.connections,
        "duration_s": args.duration,
        "instances": instances,
        "cores": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "a": {},
        "b": {},
        "ratios": {},
        "targets": {},
    }
    stolen_before, ticks_before = steal_ticks()
    failed = False
    try:
        log("training the iris model ...")
        model_dir = train_model(work)
        venv = aisrv_venv(aisrv_root)
        for n in instances:  # (a) then (b) for each N: the two sides of a ratio close together in time
            if args.skip_amlemu:
                report["a"][str(n)] = {"unavailable": "skipped (--skip-amlemu)"}
            else:
                try:
                    report["a"][str(n)] = bench_amlemu(model_dir, work / f"a{n}", args, n)
                except Exception as exc:  # noqa: BLE001 - reported, and the others still run
                    report["a"][str(n)] = {"unavailable": f"{type(exc).__name__}: {exc}"}
                    failed |= getattr(exc, "code", None) != "NotEmulated"  # not built yet is no failure
                finally:
                    if saved_home is None:
                        os.environ.pop("AMLEMU_HOME", None)
                    else:
                        os.environ["AMLEMU_HOME"] = saved_home
            report["b"][str(n)] = bench_aisrv(model_dir, work, venv, args, n)
        if args.tuned_concurrency and not args.skip_amlemu:
            n = instances[-1]
            try:
                tuned = bench_amlemu(model_dir, work / "tuned", args, n, args.tuned_concurrency)
                tuned["max_concurrent_requests_per_instance"] = args.tuned_concurrency
                report["a_tuned"] = tuned
            finally:
                if saved_home is None:
                    os.environ.pop("AMLEMU_HOME", None)
                else:
                    os.environ["AMLEMU_HOME"] = saved_home
        log(f"(c) ONNX Runtime in process for {args.duration:g} s ...")
        report["c"] = bench_in_process(model_dir, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stolen, ticks = steal_ticks()
    report["steal_percent"] = round(100 * (stolen - stolen_before) / max(ticks - ticks_before, 1), 1)
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    sides = [*report["a"].values(), *report["b"].values(), report.get("a_tuned")]
    for side in [s for s in sides if s and "unavailable" not in s]:
        failed |= side["errors"] > 0 or not side["answer_ok"]
    judge(report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 1 if failed else 0


def print_table(report: dict) -> None:
    print(
        f"iris ONNX model, one row per request, {report['connections']} connections, {report['duration_s']:g} s "
        f"each, {report['cores']} cores; load average {report['load_average_before'][0]:.2f} before, "
        f"{report['load_average_after'][0]:.2f} after; {report['steal_percent']:.1f}% of CPU time stolen"
    )
    print(f"{'':58}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}   CPU µs/request")
    rows = []
    for n in report["instances"]:
        a = report["a"][str(n)]
        rows.append((f"(a) amlemu, {n} instance(s), 1 concurrent request each", a))
        rows.append((f"(b) {report['b'][str(n)]['server']}", report["b"][str(n)]))
    if report.get("a_tuned"):
        t = report["a_tuned"]
        rows.append((f"(a') amlemu, {t['instances']} instances, {t['max_concurrent_requests_per_instance']} each", t))
    rows.append(("(c) ONNX Runtime in process, one caller", report["c"]))
    for label, side in rows:
        if "unavailable" in side:
            print(f"{label}: unavailable: {side['unavailable']}")
            continue
        wrong = "" if side["answer_ok"] else "  WRONG ANSWER"
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in side.get("cpu_us_per_request", {}).items())
        print(
            f"{label:58}{side['throughput_rps']:9,.0f}{side['p50_ms']:9.3f}{side['p99_ms']:9.3f}"
            f"{side['errors']:7}   {cpu}{wrong}"
        )
        if side.get("first_error"):
            print(f"    first error: {side['first_error']}")
    for n in report["instances"]:
        if str(n) not in report["ratios"]:
            print(f"N={n}: targets n/a without (a)")
            continue
        ratios, targets, a = report["ratios"][str(n)], report["targets"][str(n)], report["a"][str(n)]
        cpu = a["cpu_us_per_request"]
        lg = max(cpu["load_generator"], 1e-9)
        met = list(targets.values())
        print(
            f"N={n}: (a)/(b) requests/s {ratios['throughput_a_over_b']:.2f}x (target >= "
            f"{THROUGHPUT_RATIO_TARGET:g}x: {verdict(met[0])}); (a) p99 {a['p99_ms']:.2f} ms (target <= "
            f"{P99_TARGET_MS:g} ms on a quiet machine: {verdict(met[1])}); p99 (a)/(b) {ratios['p99_a_over_b']:.2f} "
            f"(target <= {P99_RATIO_TARGET:g}: {verdict(met[2])})"
        )
        print(
            f"      CPU per request: gateway {cpu['gateway']:.0f} µs = {cpu['gateway'] / lg:.2f}x the load generator's "
            f"(target <= {CPU_TARGETS['gateway']:g}x: {verdict(met[3])}), replica {cpu['replica']:.0f} µs = "
            f"{cpu['replica'] / lg:.2f}x (target <= {CPU_TARGETS['replica']:g}x: {verdict(met[4])}); "
            f"deployment ready {a['deployment_ready_s']:.2f} s (target <= 5 s: {verdict(met[5])})"
        )
    c = report["c"]
    best = max((s["throughput_rps"] for s in report["a"].values() if "unavailable" not in s), default=None)
    if best:
        print(f"ratio (c)/(a) requests/s: {c['throughput_rps'] / best:.1f}x (the best (a))")


if __name__ == "__main__":
    sys.exit(main())
