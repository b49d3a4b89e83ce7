"""How a deployment's replica starts: its environment, model folder, code and scoring server.

The replica is ``python -m emulator.serving`` (the scoring server) with the
environment variables of ``azureml-inference-server-http``: ``AZUREML_MODEL_DIR``
laid out as ``azureml-models/<name>/<version>``, ``AML_APP_ROOT`` (the code
snapshot) and ``AZUREML_ENTRY_SCRIPT``. It runs on the runtime the deployment was
created with: a local process (amlemu's interpreter, or a cached virtualenv with
the environment's packages plus the server's), or a container.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata as md
import os
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from emulator import config
from emulator.runtime import Prepared, RunHandle, RunRequest, select
from emulator.serving.settings import REPLICA_SECRET_ENV

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import DeploymentRecord

SERVING_PACKAGES = ("flask", "waitress", "granian", "numpy", "onnxruntime")
CONTAINER_APP = Path("/var/azureml-app")
_SERVING_SRC = Path(__file__).resolve().parents[1] / "serving"
#: this endpoint host's replica secret: in every replica's environment, sent by the gateway (requests
#: and probes) in REPLICA_SECRET_HEADER; a replica refuses anything without it. Never logged.
REPLICA_SECRET = secrets.token_urlsafe(32)


def serving_requirements() -> list[str]:
    """The scoring server's own packages, each with amlemu's own range for it (``granian>=2.8,<3``) or
    unpinned: the user's pins win, and the resolver fits these around them."""
    ranges = {}
    for line in md.requires("amlemu") or []:
        if ";" in line:  # an extra or a platform marker: not the server's
            continue
        req = line.replace(" ", "")
        ranges[re.split(r"[<>=!~]", req, maxsplit=1)[0].lower()] = req
    return [ranges.get(name, name) for name in SERVING_PACKAGES]


def serving_path() -> Path:
    """A folder holding only ``emulator/serving`` (for PYTHONPATH in other interpreters and images)."""
    files = sorted(p for p in _SERVING_SRC.rglob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]
    root = config.cache_dir() / "serving" / digest
    if not (root / ".ready").exists():
        staging = root.with_name(f".{digest}.{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "emulator").mkdir(parents=True)
        (staging / "emulator" / "__init__.py").write_text('"""The scoring server only (see emulator.serving)."""\n')
        shutil.copytree(_SERVING_SRC, staging / "emulator" / "serving", ignore=shutil.ignore_patterns("__pycache__"))
        (staging / ".ready").write_text("")
        try:
            staging.rename(root)
        except OSError:  # another process made it first
            shutil.rmtree(staging, ignore_errors=True)
    return root


class ReplicaLauncher:
    """Starts and stops the replicas of one deployment on its runtime."""

    blocking_wait = False

    def __init__(self, store, deployment: DeploymentRecord, log_dir: Path):
        self.store = store
        self.deployment = deployment
        self.log_dir = log_dir
        self.runtime = select(deployment.get("runtime"))
        self.blocking_wait = self.runtime.blocking
        self._prepared: Prepared | None = None
        self._model: Path | None = None

    @property
    def threads(self) -> int:
        """Requests a replica works on at once: ``WORKER_COUNT`` as azureml-inference-server-http reads it
        (default 1, one sync worker). Requests the gateway lets in beyond it
        (``max_concurrent_requests_per_instance``) wait in the replica's queue, as on Azure."""
        value = (self.deployment.get("environment_variables") or {}).get("WORKER_COUNT", "1")
        return max(1, int(value)) if str(value).isdigit() else 1

    # -- what the replica sees ------------------------------------------------------------
    def _model_dir(self) -> Path | None:
        """``.../azureml-models/<name>/<version>``: a link to the registered model's folder."""
        model = self.deployment.get("model")
        if not model:
            return None
        target = self.store.asset_dir("model", model["name"], model["version"])
        link_root = self.log_dir.parent / "azureml-models" / model["name"]
        link_root.mkdir(parents=True, exist_ok=True)
        link = link_root / model["version"]
        if not link.exists():
            try:
                link.symlink_to(target, target_is_directory=True)
            except FileExistsError:
                pass
        return link

    def replica_env(self, model_dir: str | None, code: str | None, pythonpath: str | None) -> dict[str, str]:
        dep = self.deployment
        # a local process inherits the host's environment (less amlemu's own); a container gets only what is set here
        inherited = os.environ.items() if self.runtime.shares_host else ()
        env = {
            k: v
            for k, v in inherited
            if not k.startswith(("AMLEMU_", "AZUREML_", "MLFLOW_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(dep.get("environment_variables") or {})
        env.update(
            PYTHONUNBUFFERED="1",
            AZUREML_DEPLOYMENT_NAME=dep["deployment_name"],
            AZUREML_ENDPOINT_NAME=dep["endpoint_name"],
        )
        env[REPLICA_SECRET_ENV] = REPLICA_SECRET  # after the deployment's variables: none may replace it
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        if model_dir:
            env["AZUREML_MODEL_DIR"] = model_dir
        if code:
            env["AML_APP_ROOT"] = code
            env["AZUREML_ENTRY_SCRIPT"] = dep["scoring_script"]
        return env

    def _event(self, line: str) -> None:
        with open(self.log_dir / "deployment.log", "a") as f:
            f.write(line + "\n")

    async def prepare(self) -> Prepared:
        """The environment on this runtime, with the scoring server's packages (once per launcher)."""
        if self._prepared is None:
            resolved = self.deployment.get("environment_resolved") or {}
            self._prepared = await asyncio.to_thread(
                self.runtime.prepare, resolved, self._event, serving_requirements()
            )
        return self._prepared

    async def start(self, name: str, port: int) -> tuple[RunHandle, str, Path]:
        """Start replica ``name`` listening on ``port``; returns its handle, address and log file."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        prepared = await self.prepare()
        if not self.runtime.shares_host:  # a container: on the endpoint's own network, with paths of its own
            from emulator.endpoints.docker_replica import start_container

            return await asyncio.to_thread(start_container, self, prepared, name, port, log_path)
        if self._model is None:
            self._model = self._model_dir()
        code = self.deployment.get("code")
        # a virtualenv imports amlemu's server from its source folder; amlemu's own interpreter has it installed
        pythonpath = None if prepared.bin_dir == Path(sys.executable).parent else str(serving_path())
        request = RunRequest(
            command=f"exec python -m emulator.serving --host 127.0.0.1 --port {port} --threads {self.threads}",
            cwd=Path(code) if code else self.log_dir,
            log_path=log_path,
            bin_dir=prepared.bin_dir,
            env=self.replica_env(str(self._model) if self._model else None, code, pythonpath),
            labels={"kind": "deployment", "deployment": name},
            die_with_parent=True,
        )
        return self.runtime.start(request), "127.0.0.1", log_path

    async def stop(self, handle: RunHandle) -> None:
        await asyncio.to_thread(handle.stop)
