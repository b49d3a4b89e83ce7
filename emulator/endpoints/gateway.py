"""The endpoint gateway: one scoring URI on 127.0.0.1, with Azure ML's rules in front of replicas.

For each request it checks network access and auth (``key``: primary or
secondary key; ``aml_token``: a signed token that has not expired), picks a
deployment (the ``azureml-model-deployment`` header, else the ``traffic``
split), copies a share to the ``mirror_traffic`` deployment (response
discarded), waits for a concurrency slot (``max_concurrent_requests_per_instance``
per ready replica, queueing up to ``max_queue_wait_ms``, else 429), forwards to
the least busy ready replica with ``request_timeout_ms`` (else 408), and retries
on another replica when a replica's connection fails before it answered.

Status codes follow Azure ML's online endpoints: a non-2xx answer from the model
becomes 424 with ``ms-azureml-model-error-statuscode`` (the model's body kept).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emulator.endpoints import http11, keys
from emulator.endpoints.launch import REPLICA_SECRET
from emulator.endpoints.network import caller_in_workspace
from emulator.endpoints.replicas import ReplicaSet
from emulator.serving.settings import REPLICA_SECRET_HEADER

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import EndpointRecord

#: Azure ML managed online endpoints accept request payloads up to 1.5 MB
MAX_BODY_BYTES = 1_500_000
DEPLOYMENT_HEADER = "azureml-model-deployment"
#: request ids forwarded to the replica and echoed back: 1 to 100 visible ASCII characters (the scoring
#: server's own limit is 100); anything else is refused, never forwarded
_REQUEST_ID = re.compile(r"[!-~]{1,100}")
ID_HEADERS = ("x-request-id", "x-ms-client-request-id")


def _json(status: int, message: str, code: str | None = None, **extra: Any) -> tuple[int, dict, bytes]:
    body = {"error": {"code": code or http11.REASONS.get(status, "Error").replace(" ", ""), "message": message}}
    body["error"].update(extra)
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class WeightedChooser:
    """Smooth weighted round robin: shares are exact over any window, no randomness."""

    def __init__(self, weights: dict[str, int]):
        self.weights = {k: v for k, v in weights.items() if v > 0}
        self.current = {k: 0 for k in self.weights}
        self.total = sum(self.weights.values())

    def next(self) -> str | None:
        if not self.total:
            return None
        for k, w in self.weights.items():
            self.current[k] += w
        best = max(self.current, key=self.current.__getitem__)
        self.current[best] -= self.total
        return best


class Gateway:
    """Serves one endpoint. ``config`` is replaced whole on reload; replica sets are swapped in place."""

    #: faults injected by aml_faults (emulator.endpoints.faults), installed by the host; () when none are set
    faults: Any = ()

    def __init__(self, endpoint: EndpointRecord, admin_handler: Callable):
        self.sets: dict[str, ReplicaSet] = {}
        self.admin_handler = admin_handler
        self.requests_served = 0
        self._mirror_tasks: set[asyncio.Task] = set()
        self._peers: dict[Any, bool] = {}  # peer -> inside the workspace, per open connection
        self._loop = asyncio.get_running_loop()  # once: each lookup costs Python 3.11 a getpid() system call
        self.configure(endpoint)

    def configure(self, endpoint: EndpointRecord) -> None:
        creds = endpoint["credentials"]
        self.endpoint = endpoint
        self.name = endpoint["name"]
        self.auth_mode = endpoint["auth_mode"]
        self.keys = (creds["primary"], creds["secondary"])
        self.token_secret = creds["token_secret"]
        self.admin_key = creds["admin"]
        self.public = endpoint.get("public_network_access", "enabled") == "enabled"
        self.local = bool(endpoint.get("local"))  # azure-ai-ml's local=True: no auth, no traffic rules
        self.traffic = WeightedChooser(endpoint.get("traffic") or {})
        mirror = {k: v for k, v in (endpoint.get("mirror_traffic") or {}).items() if v}
        self.mirror_to, self.mirror_share = next(iter(mirror.items())) if mirror else (None, 0)
        self.mirror_counter = 0

    # -- connections ----------------------------------------------------------------------------
    def connection(self) -> http11.ServerConnection:
        """The protocol of one client connection (the host's server makes one per connection)."""
        return http11.ServerConnection(self.dispatch, _refusal, _failure, MAX_BODY_BYTES, closed=self._forget)

    def _forget(self, connection: http11.ServerConnection) -> None:
        self._peers.pop(connection.peer, None)

    # -- one request ----------------------------------------------------------------------------------
    async def dispatch(self, request: http11.Message, peer: Any) -> tuple[int, dict, bytes]:
        path = request.path
        if path.startswith("/.amlemu/"):
            if not keys.matches_key(request.headers.get("x-amlemu-admin", ""), (self.admin_key,)):
                return _json(403, "amlemu's control routes need the host's admin key.")
            return await self.admin_handler(request)
        if path == "/" and request.method in ("GET", "HEAD"):
            return 200, {"Content-Type": "text/plain"}, b"Healthy"
        if path not in ("/score", "/swagger.json"):
            return _json(404, f"No route {path}: score with POST /score; the OpenAPI document is GET /swagger.json.")
        if path == "/score" and request.method not in ("POST", "GET"):
            status, headers, body = _json(405, f"{request.method} is not allowed on /score; send POST (or GET).")
            return status, {**headers, "Allow": "GET, POST"}, body
        if not self.local and not self.public and not await self._inside(peer):
            return _json(
                403,
                f"Endpoint '{self.name}' has public_network_access: disabled; it takes calls only "
                "from inside its workspace (the workspace's jobs). Enable public access with "
                "`amlemu online-endpoint update --name ... --set public_network_access=enabled`.",
            )
        denied = None if self.local else self._authenticate(request)
        if denied:
            return denied
        for header in ID_HEADERS:
            value = request.headers.get(header)
            if value is not None and not _REQUEST_ID.fullmatch(value):
                return _json(
                    400,
                    f"{header} must be 1 to 100 visible ASCII characters (no spaces or control "
                    f"characters); got {len(value)} characters.",
                )
        wanted = request.headers.get(DEPLOYMENT_HEADER)
        if wanted:
            if wanted not in self.sets:
                known = ", ".join(sorted(self.sets)) or "none"
                return _json(
                    404,
                    f"Deployment '{wanted}' (from the {DEPLOYMENT_HEADER} header) is not on endpoint "
                    f"'{self.name}'. Deployments: {known}.",
                )
            name = wanted
        elif self.local:  # one deployment serves every request (the newest, while a replacement starts)
            name = max(self.sets, key=lambda k: self.sets[k].deployment["created_at"], default=None)
            if name is None:
                return _json(404, f"Local endpoint '{self.name}' has no deployment yet.")
        else:
            name = self.traffic.next()
            if name is None or name not in self.sets:
                return _json(
                    404,
                    f"Endpoint '{self.name}' has no deployment with positive traffic weight. Route "
                    f"traffic (`amlemu online-endpoint update --name {self.name} --traffic "
                    f'"<deployment>=100"`) or name one with the {DEPLOYMENT_HEADER} header.',
                )
            if path == "/score":
                self._maybe_mirror(request)
        if self.faults:  # an answer injected by aml_faults (429, 503, a timeout) instead of the deployment's
            injected = await self.faults.answer(self, name)
            if injected:
                return injected
        return await self.forward(name, request)

    async def _inside(self, peer: Any) -> bool:
        if peer not in self._peers:  # once per connection, off the event loop: it reads /proc
            self._peers[peer] = await asyncio.to_thread(_from_workspace, peer, self.endpoint)
        return self._peers[peer]

    def _authenticate(self, request: http11.Message) -> tuple[int, dict, bytes] | None:
        header = request.headers.get("authorization", "")
        if not header:
            how = "get_keys / `amlemu online-endpoint get-credentials`"
            return _json(
                401,
                "Authorization header missing: send "
                f"'Authorization: Bearer <{'key' if self.auth_mode == 'key' else 'token'}>' "
                f"(from {how}).",
            )
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return _json(401, "Authorization header must be 'Bearer <key or token>'.")
        credential = credential.strip()
        if self.auth_mode == "key":
            if not keys.matches_key(credential, self.keys):
                return _json(
                    401,
                    "The key is not valid for this endpoint (wrong, or regenerated). Get the current "
                    "keys with get_keys / `amlemu online-endpoint get-credentials`.",
                )
            return None
        problem = keys.check_token(credential, self.name, self.token_secret)
        return _json(401, f"Token rejected: {problem}.") if problem else None

    def _maybe_mirror(self, request: http11.Message) -> None:
        if not self.mirror_to or self.mirror_to not in self.sets:
            return
        self.mirror_counter += self.mirror_share
        if self.mirror_counter < 100:
            return
        self.mirror_counter -= 100
        task = asyncio.create_task(self.forward(self.mirror_to, request, mirror=True))
        self._mirror_tasks.add(task)
        task.add_done_callback(self._mirror_tasks.discard)

    async def forward(self, name: str, request: http11.Message, mirror: bool = False) -> tuple[int, dict, bytes]:
        replica_set = self.sets[name]
        settings = replica_set.deployment["request_settings"]
        # what needs no slot is done before waiting for one, and the answer is built after giving it back:
        # with one request per replica at a time (Azure's default) the replica idles from one answer until
        # the next request is written to it
        request_id = request.headers.get("x-request-id") or _request_id()
        data = _replica_request(request, request_id)
        if not replica_set.started.is_set():  # the host is bringing the deployment back after a restart
            timeout_s = settings["request_timeout_ms"] / 1000
            try:
                async with asyncio.timeout(timeout_s):
                    await replica_set.started.wait()
            except TimeoutError:
                return _json(
                    408,
                    f"Request timeout: deployment '{name}' is starting after a restart of its endpoint's host "
                    f"and was not ready within request_timeout_ms ({settings['request_timeout_ms']} ms). Retry.",
                )
        if not await replica_set.slots.acquire(settings["max_queue_wait_ms"] / 1000):
            return _json(
                429,
                f"Too many pending requests for deployment '{name}': "
                f"max_concurrent_requests_per_instance is {settings['max_concurrent_requests_per_instance']} "
                f"and the request waited {settings['max_queue_wait_ms']} ms. Retry, or raise "
                "request_settings / instance_count.",
            )
        try:
            response = await self._send(replica_set, data, self._loop.time() + settings["request_timeout_ms"] / 1000)
        except TimeoutError:
            return _json(
                408,
                f"Request timeout: deployment '{name}' did not answer within request_timeout_ms "
                f"({settings['request_timeout_ms']} ms).",
            )
        finally:
            handed_over = replica_set.slots.release()
        if handed_over:
            # let the waiting request write to the replica before this answer is built and written: with one
            # request per replica at a time the replica would otherwise idle through this request's answer
            await asyncio.sleep(0)
        if isinstance(response, tuple):  # the gateway's own answer (502, 503)
            return response
        self.requests_served += 1
        replica_set.served += 1
        if mirror:
            return 200, {}, b""
        out = {
            "Content-Type": response.headers.get("content-type", "application/json"),
            DEPLOYMENT_HEADER: replica_set.name,
            "x-request-id": request_id,
            # the scoring server's own (the client's x-ms-client-request-id, else the request id), as Azure echoes it
            "x-ms-request-id": response.headers.get("x-ms-request-id") or request_id,
        }
        if response.status >= 300:
            out["ms-azureml-model-error-statuscode"] = str(response.status)
            out["ms-azureml-model-error-reason"] = "model_error"
            for header in ("x-ms-run-function-failed",):
                if header in response.headers:
                    out[header] = response.headers[header]
            return 424, out, response.body
        return response.status, out, response.body

    async def _send(
        self, replica_set: ReplicaSet, data: bytes, deadline: float
    ) -> http11.Message | tuple[int, dict, bytes]:
        """The replica's response to the encoded request ``data``, or the gateway's own 502/503 answer;
        TimeoutError when none came by ``deadline`` (the loop's clock)."""
        tried: set[str] = set()
        started = time.monotonic()
        while True:
            replica = replica_set.pick(tried)
            if replica is None:
                waiting = replica_set.replicas and not tried  # replicas restarting: wait for one
                if (waiting or tried) and time.monotonic() - started < 30:
                    tried.clear()
                    await self._pause(deadline)
                    continue
                return _json(503, f"Deployment '{replica_set.name}' has no ready replica.")
            replica.in_flight += 1
            try:
                return await replica.exchange(data, deadline)
            except http11.BadResponse as exc:
                return _json(502, f"Deployment '{replica_set.name}' answered malformed HTTP ({exc}).")
            except (ConnectionError, OSError):
                tried.add(replica.name)
                replica_set.mark_failed(replica)
                # the replica failed before answering: try another one
            finally:
                replica.in_flight -= 1

    async def _pause(self, deadline: float) -> None:
        """Waits 50 ms for a replica to be ready again, or raises TimeoutError at the request's deadline."""
        left = deadline - self._loop.time()
        if left <= 0:
            raise TimeoutError
        await asyncio.sleep(min(0.05, left))
        if self._loop.time() >= deadline:
            raise TimeoutError


def _replica_request(request: http11.Message, request_id: str) -> bytes:
    """The request as the replica gets it. Only these headers reach it, each validated (llhttp refused CR, LF,
    NUL and other control characters; the ids are checked in dispatch); a client's copy of the replica secret
    never does. A HEAD is sent as GET: the gateway drops the body itself."""
    source = request.headers
    headers = {k: source[k] for k in ("content-type", "accept", "x-ms-client-request-id") if k in source}
    headers["x-request-id"] = request_id
    headers[REPLICA_SECRET_HEADER] = REPLICA_SECRET
    method = "GET" if request.method == "HEAD" else request.method
    return http11.encode_request(method, request.target, headers, request.body)


#: the bits a version 4 UUID fixes (RFC 9562 section 5.4): its version (4) and its variant (10)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def _request_id() -> str:
    """A version 4 UUID for a request that brought no x-request-id: an id, not a secret, so from ``random``
    (half the cost of ``uuid.uuid4``'s system call on every request), and formatted here (0.8 µs, against
    1.9 µs to build a ``uuid.UUID`` and print it)."""
    h = "%032x" % (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _refusal(exc: http11.BadRequest) -> tuple[int, dict, bytes]:
    """A malformed request: answered, then the connection is closed (the parser cannot resume)."""
    return _json(exc.status, exc.message + _hint(exc.status))


def _failure(exc: Exception) -> tuple[int, dict, bytes]:
    """A defect of the gateway's own: one 500, logged, and the connection closed."""
    traceback.print_exception(exc, file=sys.stderr)
    return _json(500, f"The gateway failed on this request ({type(exc).__name__}).")


def _hint(status: int) -> str:
    if status == 413:
        return f" (Azure ML online endpoints accept request bodies up to {MAX_BODY_BYTES} bytes)."
    return ""


def _from_workspace(peer: Any, endpoint: EndpointRecord) -> bool:
    return caller_in_workspace(peer, endpoint, endpoint["workspace_secret"])
