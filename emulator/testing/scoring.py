"""A scoring script served for a test, without an endpoint: ``ScoringContainer`` (Docker) and ``ScoringServer``
(a local process).

Both start their replica as an online deployment's is started, with the same code: the deployment is
validated and written in a throwaway workspace (its model registered and its code snapshotted, as
Azure does), its environment prepared on the runtime (an image from the same offline recipe as a
docker deployment, or the process runtime's virtualenv or amlemu's own interpreter), and its replica
launched with the deployment's variables and server: amlemu's scoring server, or the environment's
own azureml-inference-server-http. Either serves that server's contract: ``GET /`` (liveness),
``POST /score`` and ``GET /swagger.json`` when the script declares its schema.

What they leave out is the endpoint: no gateway, keys, traffic rules or restarts. A test calls the
replica directly, with the replica secret the gateway would send (:meth:`gateway_headers`); the
replica still refuses any call without it, and a container publishes its port on 127.0.0.1 only.

Bad input fails ``start()`` with one message naming the cause and the fix (a missing model path or
scoring script, a conda file that is not YAML, an ``init()`` that raises, no Docker engine), and
leaves nothing running: the replica, its container and the throwaway workspace are removed.

testcontainers-python is needed by ``ScoringContainer`` only; ``ScoringServer`` works without it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from emulator import naming
from emulator.endpoints import records
from emulator.endpoints.launch import REPLICA_SECRET, ReplicaLauncher
from emulator.endpoints.replicas import Replica, ReplicaFailed, ReplicaSet
from emulator.errors import EmulatorError
from emulator.runtime.logs import LOG_TAIL_LINES, log_tail
from emulator.serving.settings import REPLICA_SECRET_HEADER
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import DeploymentRecord

try:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import WaitStrategy
except ImportError:  # ScoringServer does without it; ScoringContainer says how to get it

    class DockerContainer:  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any):
            raise EmulatorError(
                "ScoringContainer is a testcontainers-python container: install it (pip install "
                "'testcontainers>=4'), or test the scoring script without Docker with amlemu.testing.ScoringServer."
            )

    class WaitStrategy:  # type: ignore[no-redef]
        def __init__(self) -> None:
            self._startup_timeout, self._poll_interval = 120.0, 1.0


#: azureml-inference-server-http's port, the one a container's replica listens on
SCORING_PORT = 5001
DEPLOYMENT = "default"
REPLICA = "scoring-replica"
#: what an inline environment's ``image`` says for a conda file (Azure's base for one; the build uses amlemu's)
CONDA_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
_NOT_BUILT = "amlemu/scoring:not-built-yet"  # the image is built by start()
#: the line a replica's log names its cause on: amlemu's server's summary, else the root exception of the last chain
_SUMMARY = re.compile(r"failed to start: (.+)$", re.M)
_CHAINED = ("direct cause of the following exception", "During handling of the above exception")
_CAUSE_LINES = 400  # the log lines searched for the cause (a traceback's start may lie far above its end)
_EXCEPTION = re.compile(r"^\s*((?:[\w.]+)(?:Error|Exception|Exit|Interrupt)\b.*)$", re.M)


class ScoringStartFailed(EmulatorError):
    """The replica did not start: the message names the cause and the fix, and ends with its log."""

    code = "ReplicaStartFailed"


class ScoringFailed(AssertionError):
    """``score()`` got an answer other than 200.

    Attributes:
        status: the HTTP status.
        body: the answer's body.
    """

    def __init__(self, message: str, status: int, body: bytes):
        super().__init__(message)
        self.status, self.body = status, body


# --------------------------------------------------------------------------- the deployment behind a replica


@dataclass(frozen=True)
class DeploymentSpec:
    """What a test gives: the model, code, scoring script and environment of the deployment to serve.

    Relative paths are taken from ``base_path`` (the working folder when the object was made).
    """

    model: str | os.PathLike | None
    code: str | os.PathLike | None
    scoring_script: str | None
    environment: str | os.PathLike | Mapping[str, Any] | None
    model_name: str | None
    base_path: Path

    def as_yaml_fields(self, environment_variables: Mapping[str, str]) -> dict[str, Any]:
        """The online deployment's YAML fields (as ``records.create_or_update_deployment`` takes them)."""
        spec: dict[str, Any] = {"name": DEPLOYMENT, "instance_count": 1}
        if environment_variables:
            spec["environment_variables"] = dict(environment_variables)
        if self.model is not None:
            spec["model"] = {"name": self._model_name(), "path": str(self.model), "type": "custom_model"}
        if self.code is not None or self.scoring_script is not None:
            spec["code_configuration"] = {
                "code": str(self.code) if self.code is not None else None,
                "scoring_script": self.scoring_script,
            }
        if self.environment is not None:
            spec["environment"] = self._environment()
        return spec

    def _model_name(self) -> str:
        if self.model_name:
            return self.model_name
        stem = Path(str(self.model).rstrip("/")).stem
        return stem if naming.is_valid("model", stem) else "model"

    def _environment(self) -> str | dict[str, Any]:
        """A conda file becomes an inline environment (as ``Environment(image=..., conda_file=...)``); a name
        (``AzureML-sklearn-1.5@latest``) a reference; a mapping is an inline environment's YAML fields."""
        env = self.environment
        if isinstance(env, Mapping):
            return dict(env)
        text = os.fspath(cast("str | os.PathLike", env))
        if text.endswith((".yml", ".yaml")) or (self.base_path / text).is_file():
            return {"image": CONDA_BASE_IMAGE, "conda_file": text}
        return text if text.startswith("azureml:") else f"azureml:{text}"


class ThrowawayDeployment:
    """The deployment written in a workspace of its own under a temporary folder, and its replica launcher.

    Every check an online deployment's creation makes is made here, with its messages; the folder
    (registered model, code snapshot, replica log) is removed by :meth:`remove`.
    """

    def __init__(self, spec: DeploymentSpec, runtime: str, environment_variables: Mapping[str, str]):
        self.id = secrets.token_hex(4)
        self.root = Path(tempfile.mkdtemp(prefix="amlemu-scoring-"))
        self.store: WorkspaceStore | None = None
        try:
            self.store = WorkspaceStore(self.root / "workspace", f"scoring-{self.id}")
            endpoint = f"scoring-{self.id}"
            records.create_or_update_endpoint(self.store, {"name": endpoint}, local=True)
            record, _ = records.create_or_update_deployment(
                self.store, spec.as_yaml_fields(environment_variables), spec.base_path, endpoint
            )
            self.record = cast("DeploymentRecord", {**record, "runtime": runtime})
            self.log_dir = self.root / "logs"
            self.log_dir.mkdir()
            self.launcher = ReplicaLauncher(self.store, self.record, self.log_dir)
        except BaseException:
            self.remove()
            raise

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{REPLICA}.log"

    def readiness_budget(self) -> float:
        """Seconds the deployment's readiness probe allows a replica to get ready (as the endpoint host waits)."""
        probe = self.record["readiness_probe"]
        return float(probe["initial_delay"] + probe["period"] * probe["failure_threshold"])

    def remove(self) -> None:
        if self.store is not None:
            self.store.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _run(coroutine):
    """Run one of the launcher's coroutines to its end from synchronous code, an async test's included."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def start_failure(what: str, reason: str, log: str) -> ScoringStartFailed:
    """The start-up error: the reason, the cause the log names, the fix, and the log's tail.

    The cause is amlemu's server's summary line, else the first exception of the last traceback (the
    root of a chain: azureml-inference-server-http wraps what init() raised in its own exception)."""
    summary = _SUMMARY.findall(log)
    tracebacks = log.split("Traceback (most recent call last)")
    first = len(tracebacks) - 1  # the last chain's first traceback: walk back over "... the above exception ..."
    while first > 1 and any(link in tracebacks[first - 1] for link in _CHAINED):
        first -= 1
    exceptions = _EXCEPTION.findall(tracebacks[first])
    cause = summary[-1] if summary else exceptions[0] if exceptions else ""
    tail = "\n".join(log.rstrip("\n").splitlines()[-LOG_TAIL_LINES:])
    return ScoringStartFailed(
        f"{what} did not start: {reason.rstrip('.')}."
        + (f" The cause: {cause.strip()}" if cause else "")
        + "\nFix the scoring script (its init() and imports) or the environment it needs, then run the test "
        f"again.\nLast lines of the replica's log:\n{tail or '(empty)'}"
    )


# --------------------------------------------------------------------------- calls


class ScoringCalls:
    """HTTP calls to the replica, with the header its gateway sends; shared by both kinds."""

    #: seconds a call may take (Azure's request_timeout_ms is 5 s by default; a test may score more slowly)
    call_timeout = 60.0

    def _address(self) -> tuple[str, int]:
        raise NotImplementedError

    def _log_tail(self) -> str:
        raise NotImplementedError

    def gateway_headers(self) -> dict[str, str]:
        """The header the endpoint's gateway adds to every call: send it with your own HTTP client."""
        return {REPLICA_SECRET_HEADER: REPLICA_SECRET}

    def get_base_url(self) -> str:
        host, port = self._address()
        return f"http://{host}:{port}"

    def get_scoring_url(self) -> str:
        """``http://127.0.0.1:<port>/score``: the replica's scoring route."""
        return f"{self.get_base_url()}/score"

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One call to the replica (``GET /``, ``GET /swagger.json`` ...): status, headers, body."""
        host, port = self._address()
        connection = http.client.HTTPConnection(host, port, timeout=self.call_timeout)
        try:
            connection.request(method, path, body=body, headers={**(headers or {}), **self.gateway_headers()})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def score_raw(self, payload: Any, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """``POST /score``: ``payload`` as JSON (bytes and str as they are); status, headers, body."""
        if isinstance(payload, (bytes, bytearray)):
            body = bytes(payload)
        else:
            body = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        return self.request("POST", "/score", body, {"Content-Type": "application/json", **(headers or {})})

    def score(self, payload: Any, headers: Mapping[str, str] | None = None) -> Any:
        """``POST /score`` and the parsed answer (JSON, or text when the script answers text); ScoringFailed,
        with the answer and the replica's log tail, when the status is not 200."""
        status, answer_headers, body = self.score_raw(payload, headers)
        if status != 200:
            raise ScoringFailed(
                f"POST /score answered {status}: {body[:2000].decode(errors='replace')}\n"
                f"Last lines of the replica's log:\n{self._log_tail()}",
                status,
                body,
            )
        content_type = {k.lower(): v for k, v in answer_headers.items()}.get("content-type", "")
        return json.loads(body) if "json" in content_type else body.decode(errors="replace")


# --------------------------------------------------------------------------- the process runtime


class ScoringServer(ScoringCalls):
    """A scoring script's replica as a local process, as a deployment on the process runtime runs it.

    For fast unit tests of a ``score.py`` without Docker::

        with ScoringServer(model="outputs/model", code="src", scoring_script="score.py",
                           environment="AzureML-sklearn-1.5@latest") as server:
            assert server.score({"data": [[5.1, 3.5, 1.4, 0.2]]}) == [0]

    Args:
        model: a model file or folder (``AZUREML_MODEL_DIR`` holds it, as on Azure); an ONNX model with no
            code is served by the built-in scorer.
        code: the folder of the scoring script (snapshotted, as at deployment time).
        scoring_script: the script's path inside ``code``.
        environment: a conda YAML file, a curated or registered environment name
            (``AzureML-sklearn-1.5@latest``), an inline environment's fields, or None (no code only).
        model_name: the name the model is registered under (default: its file or folder name).
        environment_variables: the deployment's ``environment_variables`` (also :meth:`with_env`).
        base_path: the folder relative paths start from (default: the working folder).
    """

    runtime = "process"

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        code: str | os.PathLike | None = None,
        scoring_script: str | None = None,
        environment: str | os.PathLike | Mapping[str, Any] | None = None,
        *,
        model_name: str | None = None,
        environment_variables: Mapping[str, str] | None = None,
        base_path: str | os.PathLike | None = None,
    ):
        self.spec = DeploymentSpec(
            model, code, scoring_script, environment, model_name, Path(base_path or os.getcwd()).resolve()
        )
        self.env: dict[str, str] = dict(environment_variables or {})
        self._deployment: ThrowawayDeployment | None = None
        self._replica: Replica | None = None

    def with_env(self, key: str, value: str) -> ScoringServer:
        self.env[key] = value
        return self

    def with_envs(self, **variables: str) -> ScoringServer:
        self.env.update(variables)
        return self

    def start(self) -> ScoringServer:
        """Write the deployment, prepare its environment, start its replica and wait until it is ready."""
        if self._replica is not None:
            return self
        deployment = ThrowawayDeployment(self.spec, self.runtime, self.env)
        try:
            self._replica = _run(ReplicaSet(deployment.record, deployment.launcher).launch(REPLICA))
        except ReplicaFailed as exc:
            reason = str(exc).partition("\n")[0]
            failure = start_failure("ScoringServer", reason, log_tail(deployment.log_path, _CAUSE_LINES))
            deployment.remove()
            raise failure from None
        except BaseException:
            deployment.remove()
            raise
        self._deployment = deployment
        return self

    def stop(self) -> None:
        """Stop the replica (and what it started) and remove the throwaway workspace."""
        replica, self._replica = self._replica, None
        deployment, self._deployment = self._deployment, None
        try:
            if replica is not None:
                replica.handle.stop()
        finally:
            if deployment is not None:
                deployment.remove()

    def __enter__(self) -> ScoringServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """The replica's process id while it runs."""
        return self._replica.handle.pid if self._replica else None

    def get_logs(self) -> str:
        """The replica's log: the server's and the scoring script's output."""
        if self._deployment is None:
            raise ScoringStartFailed("ScoringServer is not started: call start() or use it in a with block.")
        return self._deployment.log_path.read_text(errors="replace") if self._deployment.log_path.exists() else ""

    def _address(self) -> tuple[str, int]:
        if self._replica is None:
            raise ScoringStartFailed("ScoringServer is not started: call start() or use it in a with block.")
        return self._replica.address, self._replica.port

    def _log_tail(self) -> str:
        return log_tail(self._deployment.log_path) if self._deployment else ""


# --------------------------------------------------------------------------- the docker runtime


class ReplicaReadiness(WaitStrategy):
    """Ready when the replica answers ``GET /`` with 200 (with the replica secret, as the gateway's readiness
    probe); ReplicaFailed at once when the container exits first, TimeoutError after the startup timeout."""

    def __init__(self, port: int, headers: Mapping[str, str]):
        super().__init__()
        self._port, self._headers = port, dict(headers)

    def wait_until_ready(self, container) -> None:
        deadline = time.monotonic() + self._startup_timeout
        wrapped = container.get_wrapped_container()
        while True:
            wrapped.reload()
            if wrapped.status in ("exited", "dead"):
                code = wrapped.attrs["State"]["ExitCode"]
                raise ReplicaFailed(f"its container exited with code {code} before it was ready")
            if wrapped.status == "running" and self._answers(container):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica did not answer GET / within {self._startup_timeout:g} s")
            time.sleep(self._poll_interval)

    def _answers(self, container) -> bool:
        host = container.get_container_host_ip()
        try:
            port = container.get_exposed_port(self._port)
            connection = http.client.HTTPConnection(host, port, timeout=2)
            try:
                connection.request("GET", "/", headers=self._headers)
                return connection.getresponse().status == 200
            finally:
                connection.close()
        except (OSError, http.client.HTTPException, ConnectionError):
            return False


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("localhost", "::1") else host


def _on_loopback(binding: Any) -> tuple:
    """A port binding (``with_bind_ports``' host port, or None for any) published on 127.0.0.1 only."""
    if isinstance(binding, tuple):
        binding = binding[1] if len(binding) > 1 else None
    return ("127.0.0.1", binding) if binding else ("127.0.0.1",)


def _require_engine() -> None:
    from emulator.runtime.engine import DockerUnavailable, docker_client

    try:
        docker_client()
    except DockerUnavailable as exc:
        detail = re.search(r"\((.*?)\)", str(exc))
        raise DockerUnavailable(
            f"ScoringContainer needs a Docker engine, and none answers ({detail[1] if detail else exc}). Start one "
            "(as root: `dockerd > /tmp/dockerd.log 2>&1 &`; DOCKER_HOST names a remote one), or test the scoring "
            "script without Docker with amlemu.testing.ScoringServer (the same arguments, a local process)."
        ) from None


_REAPER_LOCK = threading.Lock()


@contextlib.contextmanager
def _reaper_only_if_present(client) -> Iterator[None]:
    """testcontainers first starts its Ryuk reaper, pulling its image; offline there is none to pull.

    When that image is not on the engine, this container starts without the reaper (testcontainers'
    setting is switched off for that moment, under a lock): it is removed by ``stop()``, and on any
    start-up failure, and it carries amlemu's labels for ``amlemu system prune``.
    """
    from docker.errors import ImageNotFound
    from testcontainers.core.config import testcontainers_config as settings

    if settings.ryuk_disabled:
        yield
        return
    try:
        client.client.images.get(settings.ryuk_image)
        yield
        return
    except ImageNotFound:
        pass
    with _REAPER_LOCK:
        settings.ryuk_disabled = True
        try:
            yield
        finally:
            settings.ryuk_disabled = False


class ScoringContainer(ScoringCalls, DockerContainer):
    """A scoring script's replica in a container, as a deployment on the docker runtime runs it: a
    testcontainers container (``with_env``, ``with_bind_ports``, ``with_network``, ``get_logs`` ...).

    ::

        with ScoringContainer(model="outputs/model", code="src", scoring_script="score.py",
                              environment="env/conda.yml") as container:
            assert container.score({"data": [[5.1, 3.5, 1.4, 0.2]]}) == [0]

    The image is the deployment's (built offline from the environment plus the scoring server's packages,
    cached); the container runs as the invoking user, without capabilities, publishes its port on
    127.0.0.1 only, and is labelled as amlemu's replicas are. Readiness is :class:`ReplicaReadiness`.

    Args: as :class:`ScoringServer`'s; other keyword arguments go to ``DockerContainer``.
    """

    runtime = "docker"

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        code: str | os.PathLike | None = None,
        scoring_script: str | None = None,
        environment: str | os.PathLike | Mapping[str, Any] | None = None,
        *,
        model_name: str | None = None,
        environment_variables: Mapping[str, str] | None = None,
        base_path: str | os.PathLike | None = None,
        **kwargs: Any,
    ):
        _require_engine()  # testcontainers' client asks the engine its version at once
        super().__init__(_NOT_BUILT, env=dict(environment_variables or {}), **kwargs)
        self.spec = DeploymentSpec(
            model, code, scoring_script, environment, model_name, Path(base_path or os.getcwd()).resolve()
        )
        self.with_exposed_ports(SCORING_PORT)
        self._deployment: ThrowawayDeployment | None = None
        self._readiness: ReplicaReadiness | None = None
        self._scoring_id: str | None = None

    @property
    def scoring_id(self) -> str | None:
        """The id of the last start's throwaway workspace (kept after stop, a failed start's too): its containers
        carry ``com.amlemu.scoring-container=<id>`` and ``com.amlemu.workspace=scoring-<id>``."""
        return self._scoring_id

    def start(self) -> ScoringContainer:
        """Build (or find cached) the image, start the container and wait until the replica is ready."""
        if self._wait_strategy is None:  # the deployment's readiness budget is set once it is known
            self._readiness = ReplicaReadiness(SCORING_PORT, self.gateway_headers()).with_poll_interval(0.1)
            self.waiting_for(self._readiness)
        try:
            with _reaper_only_if_present(self.get_docker_client()):
                super().start()
        except (ReplicaFailed, TimeoutError) as exc:
            reason = str(exc).partition("\n")[0]
            failure = start_failure("ScoringContainer", reason, self._log_tail(_CAUSE_LINES))
            self.stop()
            raise failure from None
        except BaseException:
            self.stop()
            raise
        return self

    def _configure(self) -> None:
        """testcontainers' hook before the container is created: the deployment, its image and its replica's
        container settings (those of :func:`emulator.endpoints.docker_replica.replica_request`)."""
        from emulator.endpoints.docker_replica import replica_request
        from emulator.runtime.docker import run_options, volume_bindings

        deployment = self._deployment = ThrowawayDeployment(self.spec, self.runtime, self.env)
        self._scoring_id = deployment.id
        prepared = _run(deployment.launcher.prepare())
        request = replica_request(deployment.launcher, prepared, REPLICA, SCORING_PORT, deployment.log_path, None)
        request.labels["scoring-container"] = deployment.id
        options = run_options(request)
        # testcontainers' own: the command, ports and network (with_network, the network this process runs
        # on when it runs in a container, else the default bridge: publishing needs one)
        for theirs in ("detach", "ports", "command", "network", "network_mode"):
            options.pop(theirs, None)
        self.image = request.image or _NOT_BUILT
        self.env = options.pop("environment")
        self.with_command(["/bin/bash", "-c", request.command])  # its log is the container's (get_logs)
        for host_path, mount in volume_bindings(request).items():
            self.with_volume_mapping(host_path, mount["bind"], mount["mode"])
        if self._readiness is not None and self._wait_strategy is self._readiness:
            self._readiness.with_startup_timeout(int(deployment.readiness_budget()))
        self.ports = {port: _on_loopback(host) for port, host in self.ports.items()}  # type: ignore[misc]
        self._kwargs = {**options, **self._kwargs}

    def stop(self, force: bool = True, delete_volume: bool = True) -> None:
        """Remove the container and the throwaway workspace (idempotent)."""
        from docker.errors import NotFound

        try:
            try:
                super().stop(force=force, delete_volume=delete_volume)
            except NotFound:
                pass
            self._container = None
        finally:
            deployment, self._deployment = self._deployment, None
            if deployment is not None:
                deployment.remove()

    def get_container_host_ip(self) -> str:
        """Where this process reaches the container. Its port is published on the engine's loopback only, so
        testcontainers' gateway address (its guess when this process runs in a container with a local engine
        socket) is replaced by 127.0.0.1; on a network shared with this process's container, the container's
        own address (testcontainers' bridge mode, unpublished port) stays."""
        from testcontainers.core.config import ConnectionMode

        host = super().get_container_host_ip()
        if self.get_docker_client().get_connection_mode() is ConnectionMode.gateway_ip:
            return "127.0.0.1"
        return _loopback(host)

    def _address(self) -> tuple[str, int]:
        return self.get_container_host_ip(), int(self.get_exposed_port(SCORING_PORT))

    def _log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if self._container is None:
            return ""
        try:
            text = self._container.logs().decode(errors="replace")
        except Exception:
            return ""
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])
