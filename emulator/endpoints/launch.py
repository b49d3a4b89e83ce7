"""How a deployment's replica starts: its environment, model folder, code and scoring server.

The replica gets the environment variables of ``azureml-inference-server-http``:
``AZUREML_MODEL_DIR`` laid out as ``azureml-models/<name>/<version>``,
``AML_APP_ROOT`` (the code snapshot) and ``AZUREML_ENTRY_SCRIPT``. Its server is
the environment's own when it brings one, as on Azure: a deployment with a scoring
script whose environment holds ``azureml-inference-server-http`` (directly or
through ``azureml-defaults``) runs ``azmlinfsrv`` at the user's version, behind
the gateway's checks (see :mod:`emulator.serving.user_server`). Any other replica
runs amlemu's scoring server, ``python -m emulator.serving``, with its packages
added to the environment. It runs on the runtime the deployment was created with:
a local process (amlemu's interpreter, or a cached virtualenv), or a container.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata as md
import json
import os
import re
import secrets
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from emulator import config
from emulator.endpoints.records import mlflow_model_folder
from emulator.runtime import Prepared, RunHandle, RunRequest, select
from emulator.serving import user_server
from emulator.serving.settings import REPLICA_SECRET_ENV

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import DeploymentRecord

SERVING_PACKAGES = ("flask", "waitress", "granian", "numpy", "onnxruntime")
CONTAINER_APP = Path("/var/azureml-app")
_SERVING_SRC = Path(__file__).resolve().parents[1] / "serving"
#: this endpoint host's replica secret: in every replica's environment, sent by the gateway (requests
#: and probes) in REPLICA_SECRET_HEADER; a replica refuses anything without it. Never logged.
REPLICA_SECRET = secrets.token_urlsafe(32)


#: the generated scoring script of a no-code MLflow deployment: its folder (under emulator/serving) is the
#: replica's AML_APP_ROOT; and what it needs beyond amlemu's server, unless the model's environment names it
MLFLOW_SCORING = ("mlflow_scoring", "score.py")
MLFLOW_SCORING_PACKAGES = (("mlflow-skinny", ("mlflow", "mlflow-skinny")), ("pandas", ("pandas",)))
#: the server Azure's images run, and the package that brings it along
USER_SERVER = "azureml-inference-server-http"
BRINGS_USER_SERVER = (USER_SERVER, "azureml-defaults")
#: server packages that exist only for newer Pythons than a user's environment may have: the server
#: does without them there (granian: waitress serves instead)
_PYTHON_MARKERS = {"granian": 'python_version >= "3.10"'}
#: run with the environment's interpreter: which azureml-inference-server-http it holds, and its azmlinfsrv
_SERVER_PROBE = """
import importlib.metadata as md, json, os, shutil, sys
script = os.path.join(os.path.dirname(sys.executable), "azmlinfsrv")
script = script if os.access(script, os.X_OK) else shutil.which("azmlinfsrv")
try:
    version = md.version("azureml-inference-server-http") if script else None
except md.PackageNotFoundError:
    version = None
print("amlemu-server-probe " + json.dumps({"version": version, "script": script}))
"""
_PROBE_SECONDS = 120
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")  # a PEP 508 requirement's name
#: environment (interpreter folder or image) -> what _SERVER_PROBE found there, for this endpoint host
_found_servers: dict[str, dict] = {}


def _requirement_name(line: object) -> str | None:
    """A requirement's distribution name, PEP 503 normalised (``azureml-inference-server-http``); None when the
    line names none. A regular expression, not packaging's parser: the endpoint host starts without it."""
    match = _REQUIREMENT_NAME.match(str(line))
    return re.sub(r"[-_.]+", "-", match[1]).lower() if match else None


def serving_requirements() -> list[str]:
    """The scoring server's own packages, each with amlemu's own range for it (``granian>=2.8,<3``) or
    unpinned: the user's pins win, and the resolver fits these around them."""
    ranges = {}
    for line in md.requires("amlemu") or []:
        if ";" in line:  # an extra or a platform marker: not the server's
            continue
        ranges[_requirement_name(line)] = line.replace(" ", "")
    out = []
    for name in SERVING_PACKAGES:
        req = ranges.get(name, name)
        out.append(f"{req}; {_PYTHON_MARKERS[name]}" if name in _PYTHON_MARKERS else req)
    return out


def names_user_server(requirements) -> bool:
    """Whether a requirement list names azureml-inference-server-http or a package that brings it."""
    for line in requirements or ():
        if _requirement_name(line) in BRINGS_USER_SERVER:
            return True
    return False


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
        self._prepare_lock = asyncio.Lock()
        self._model: Path | None = None
        #: the environment's own server (``{"version", "script"}``) the replicas run; None: amlemu's
        self.own_server: dict | None = None
        #: an MLflow model without a scoring script: served by the script Azure ML would generate
        self.mlflow_scoring = (
            not deployment.get("code") and mlflow_model_folder(store, deployment.get("model")) is not None
        )

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
        elif self.mlflow_scoring:  # amlemu's serving sources: on PYTHONPATH, or amlemu's own installed ones
            serving = f"{pythonpath}/emulator/serving" if pythonpath else str(_SERVING_SRC)
            env["AML_APP_ROOT"] = f"{serving}/{MLFLOW_SCORING[0]}"
            env["AZUREML_ENTRY_SCRIPT"] = MLFLOW_SCORING[1]
        return env

    def _event(self, line: str) -> None:
        with open(self.log_dir / "deployment.log", "a") as f:
            f.write(line + "\n")

    async def prepare(self) -> Prepared:
        """The environment on this runtime, and which server its replicas run (once per launcher).

        A deployment with a scoring script whose requirements name azureml-inference-server-http (or
        azureml-defaults) gets its environment as the user wrote it: the server brings its own
        packages, and amlemu's (flask>=3, onnxruntime ...) could clash with an older one's pins. The
        prepared environment is then looked into: if it holds ``azmlinfsrv``, the replicas run it;
        if not, amlemu's server packages are added and its server runs. Any other deployment gets
        amlemu's server packages added, and runs azmlinfsrv only if the environment has it anyway
        (a user's Docker image)."""
        async with self._prepare_lock:
            if self._prepared is None:
                resolved = self.deployment.get("environment_resolved") or {}
                has_script = bool(self.deployment.get("code") and self.deployment.get("scoring_script"))
                own = has_script and names_user_server(resolved.get("requirements"))
                extra = [] if own else serving_requirements()
                if self.mlflow_scoring:
                    named = {_requirement_name(line) for line in resolved.get("requirements") or ()}
                    extra += [pkg for pkg, names in MLFLOW_SCORING_PACKAGES if not named.intersection(names)]
                prepared = await asyncio.to_thread(self.runtime.prepare, resolved, self._event, extra)
                found = await asyncio.to_thread(self._find_user_server, prepared) if has_script else None
                if found is None and own:
                    self._event(
                        f"[amlemu] the environment names {' or '.join(BRINGS_USER_SERVER)} but holds no "
                        "azmlinfsrv: its replicas run amlemu's scoring server, whose packages are added"
                    )
                    prepared = await asyncio.to_thread(
                        self.runtime.prepare, resolved, self._event, serving_requirements()
                    )
                if found:
                    self._event(
                        f"[amlemu] replicas run the environment's own {USER_SERVER} {found['version']} "
                        f"(azmlinfsrv) behind the endpoint's gateway"
                    )
                self._prepared, self.own_server = prepared, found
        return self._prepared

    def _find_user_server(self, prepared: Prepared) -> dict | None:
        """``{"version", "script"}`` of the azmlinfsrv the prepared environment holds, or None: asked of the
        environment's own interpreter, on its runtime."""
        key = f"{prepared.runtime}:{prepared.image or prepared.bin_dir}"
        if key not in _found_servers:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            # not *.log (get-logs shows the newest of those); unique: two generations may probe at once
            log_path = self.log_dir / f"server-probe-{secrets.token_hex(4)}.out"
            request = RunRequest(
                command=f"exec python -I -c {shlex.quote(_SERVER_PROBE)}",
                cwd=self.log_dir,
                env={"PATH": os.environ.get("PATH", os.defpath)} if self.runtime.shares_host else {},
                log_path=log_path,
                bin_dir=prepared.bin_dir,
                image=prepared.image,
                mounts=[self.log_dir],
                # a kind `system prune` removes if a dead host left it; not labelled as the endpoint's replicas are
                labels={
                    "kind": "deployment",
                    "workspace": self.store.name,
                    "server-probe": self.deployment["endpoint_name"],
                },
                die_with_parent=True,
            )
            handle = self.runtime.start(request)
            code = handle.wait(_PROBE_SECONDS)
            if code is None:
                handle.stop()
                handle.wait(10)  # reaped (a container: removed)
            output = log_path.read_text(errors="replace") if log_path.exists() else ""
            log_path.unlink(missing_ok=True)
            line = next((x for x in output.splitlines() if x.startswith("amlemu-server-probe ")), None)
            if code != 0 or line is None:  # no usable interpreter answered: amlemu's server, as before
                self._event(f"[amlemu] could not tell whether the environment holds azmlinfsrv: {output[-500:]}")
                return None
            _found_servers[key] = json.loads(line.partition(" ")[2])
        found = _found_servers[key]
        return found if found.get("version") and found.get("script") else None

    def server_command(self, host: str, port: int) -> tuple[str, dict[str, str]]:
        """The replica's command listening on ``host:port``, and the variables it adds to the replica's."""
        if self.own_server:
            dep = self.deployment
            command = (
                f"exec {shlex.quote(self.own_server['script'])} "
                f"--entry_script {shlex.quote(dep['scoring_script'])} --port {port}"
            )
            extra_args = (dep.get("environment_variables") or {}).get("GUNICORN_CMD_ARGS", "")
            env = {"GUNICORN_CMD_ARGS": f"{extra_args} {user_server.GUNICORN_ARGS}".strip()}
            if host != "0.0.0.0":  # azmlinfsrv's own; a local process listens on loopback only
                env[user_server.HOST_ENV] = host
            return command, env
        return f"exec python -m emulator.serving --host {host} --port {port} --threads {self.threads}", {}

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
        command, server_env = self.server_command("127.0.0.1", port)
        request = RunRequest(
            command=command,
            cwd=Path(code) if code else self.log_dir,
            log_path=log_path,
            bin_dir=prepared.bin_dir,
            env={**self.replica_env(str(self._model) if self._model else None, code, pythonpath), **server_env},
            labels={"kind": "deployment", "deployment": name},
            die_with_parent=True,
        )
        return self.runtime.start(request), "127.0.0.1", log_path

    async def stop(self, handle: RunHandle) -> None:
        await asyncio.to_thread(handle.stop)
