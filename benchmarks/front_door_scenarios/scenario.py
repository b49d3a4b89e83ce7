"""One timed scenario, through ``connect()`` or through the front door (the real ``MLClient``).

Prints one JSON line: ``{"scenario": ..., "via": ..., "seconds": ...}``. The clock starts just
before the client is built (``connect()`` or ``MLClient(DefaultAzureCredential(), ...)``), so
client construction is included, and stops when the scenario's last call returns.
Imports are outside the clock for both (both import azure-ai-ml).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from azure.ai.ml import MLClient, command
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint, Model
from azure.identity import DefaultAzureCredential

from backends import connect

SUBSCRIPTION, GROUP = "00000000-1111-2222-3333-444444444444", "bench-rg"


def client(via: str, workspace: str):
    if via == "local":
        return connect("local", workspace=workspace)
    return MLClient(DefaultAzureCredential(), SUBSCRIPTION, GROUP, workspace)


def job(ml) -> None:
    submitted = ml.jobs.create_or_update(command(command="echo hello", environment="AzureML-sklearn-1.5@latest"))
    ml.jobs.stream(submitted.name)


def model(ml, onnx: Path) -> None:
    ml.models.create_or_update(Model(name="bench-model", path=str(onnx)))


def endpoint(ml, onnx: Path) -> None:
    registered = ml.models.get("bench-served", label="latest")
    name = "bench-" + uuid.uuid4().hex[:8]
    ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=name, auth_mode="key")).result()
    ml.online_deployments.begin_create_or_update(
        ManagedOnlineDeployment(name="blue", endpoint_name=name, model=registered, instance_count=1)
    ).result()
    print(json.dumps({"endpoint": name}), file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["job", "model", "endpoint"])
    parser.add_argument("--via", choices=["local", "front-door"], required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--onnx", type=Path, required=True)
    args = parser.parse_args()
    start = time.perf_counter()
    ml = client(args.via, args.workspace)
    if args.scenario == "job":
        job(ml)
    elif args.scenario == "model":
        model(ml, args.onnx)
    else:
        endpoint(ml, args.onnx)
    # one marked line: jobs.stream prints the job's log on stdout too
    print("\nBENCH " + json.dumps({"scenario": args.scenario, "via": args.via, "seconds": time.perf_counter() - start}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
