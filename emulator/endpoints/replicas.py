"""The replicas of one online deployment: started on a runtime, probed, restarted, scaled.

A :class:`ReplicaSet` owns ``instance_count`` scoring servers
(:mod:`emulator.serving`) for one generation of a deployment. It answers which
replica takes the next request (the least busy ready one), caps concurrency with
``request_settings`` (:class:`Slots`), restarts a replica whose process dies or
whose liveness probe keeps failing, and, with target-utilization scale settings,
adds and removes replicas between ``min_instances`` and ``max_instances``.
"""

from __future__ import annotations

import asyncio
import collections
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.endpoints import http11
from emulator.endpoints.launch import REPLICA_SECRET, ReplicaLauncher
from emulator.runtime.base import RunHandle
from emulator.runtime.logs import log_tail
from emulator.serving.settings import REPLICA_CHANNEL_HEADER, REPLICA_SECRET_HEADER

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import DeploymentRecord

POLL_S = 0.2
_PROBE = http11.encode_request("GET", "/", {REPLICA_SECRET_HEADER: REPLICA_SECRET, "Connection": "close"}, b"")
#: the Unix socket a replica on this machine may offer (amlemu's direct server does; see emulator.serving.settings)
_CHANNEL = re.compile(r"@amlemu-replica-[0-9a-f]{32}")


class ReplicaFailed(Exception):
    """A replica could not start: the message holds the reason and its log tail."""


class Slots:
    """At most ``capacity`` requests in flight; others wait in order, up to a deadline.

    A releasing request hands its slot straight to the first waiter (its future gets True): with
    one request per replica at a time (Azure's default) this hand-over is on every request's path,
    so a wait is one future and one timer, not a task or ``asyncio.wait``.
    """

    def __init__(self, capacity: int):
        self.capacity, self.used = capacity, 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None  # the first waiter's: slots serve one loop

    async def acquire(self, timeout_s: float) -> bool:
        if self.used < self.capacity and not self._waiters:
            self.used += 1
            return True
        loop = self._loop
        if loop is None:  # looked up once: each lookup costs Python 3.11 a getpid() system call
            loop = self._loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiters.append(fut)
        timer = loop.call_later(timeout_s, _expire, fut)
        try:
            if await fut:
                return True  # a releasing request handed its slot over
            self._waiters.remove(fut)  # the wait expired
            return False
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.result():
                self.release()  # handed a slot in the same moment the waiter was cancelled: pass it on
            elif fut in self._waiters:
                self._waiters.remove(fut)
            raise
        finally:
            timer.cancel()

    def release(self) -> bool:
        """Gives a slot back; True when a waiting request got it (it runs at the loop's next turn)."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(True)
                return True
        self.used -= 1
        return False

    def resize(self, capacity: int) -> None:
        self.capacity = capacity
        while self.used < self.capacity and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                self.used += 1
                fut.set_result(True)


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(False)


@dataclass
class Replica:
    name: str
    port: int
    handle: RunHandle
    log_path: Path
    address: str = "127.0.0.1"
    ready: bool = False
    in_flight: int = 0
    probe_failures: int = 0
    started_at: float = field(default_factory=time.time)
    pool: list[http11.ReplicaConnection] = field(default_factory=list)
    restarts: int = 0
    #: the Unix socket the replica offered in its readiness answer; None: its TCP port
    channel: str | None = None

    async def send(self, method: str, target: str, headers: dict[str, str], body: bytes) -> http11.Message:
        """One request over a pooled keep-alive connection (a stale pooled one is retried fresh).

        Each connection carries one request at a time and goes back to the pool only when its response
        ended cleanly with nothing after it (see http11.ReplicaConnection); otherwise it is closed.
        """
        return await self.exchange(http11.encode_request(method, target, headers, body))

    async def exchange(self, data: bytes, deadline: float | None = None) -> http11.Message:
        """:meth:`send` with the request already encoded (``http11.encode_request``); TimeoutError past
        ``deadline`` (the loop's clock)."""
        pool = self.pool
        while pool:
            connection = pool.pop()
            if not connection.usable:
                connection.close()
                continue
            try:
                response = await connection.exchange(data, deadline)
            except ConnectionError:
                continue  # the server closed an idle connection: nothing was processed
            self._keep(connection)
            return response
        if deadline is None:
            connection = await self._connect()
        else:
            async with asyncio.timeout_at(deadline):
                connection = await self._connect()
        response = await connection.exchange(data, deadline)  # closes the connection itself on any failure
        self._keep(connection)
        return response

    async def _connect(self) -> http11.ReplicaConnection:
        if self.channel:
            try:
                return await http11.open_replica_channel(self.channel)
            except OSError:  # the socket is gone: the TCP port decides whether the replica is
                self.channel = None
        return await http11.open_replica_connection(self.address, self.port)

    def _keep(self, connection: http11.ReplicaConnection) -> None:
        if connection.usable and len(self.pool) < 64:
            self.pool.append(connection)
        else:
            connection.close()

    def close_pool(self) -> None:
        for connection in self.pool:
            connection.close()
        self.pool.clear()

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "pid": self.handle.pid,
            "ready": self.ready,
            "in_flight": self.in_flight,
            "restarts": self.restarts,
            "channel": "unix" if self.channel else "tcp",
            "log": str(self.log_path),
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def probe(address: str, port: int, timeout_s: float) -> bool:
    """``GET /`` (with the replica secret, as every gateway request) answers 200 within ``timeout_s``."""
    return await probe_answer(address, port, timeout_s) is not None


async def probe_answer(address: str, port: int, timeout_s: float) -> http11.Message | None:
    """The 200 answer to :func:`probe`'s request, or None."""
    try:
        async with asyncio.timeout(timeout_s):
            connection = await http11.open_replica_connection(address, port)
            try:
                response = await connection.exchange(_PROBE)
            finally:
                connection.close()
    except (OSError, TimeoutError, http11.BadResponse):
        return None
    return response if response.status == 200 else None


def offered_channel(address: str, answer: http11.Message) -> str | None:
    """The Unix socket a replica's readiness answer offers, when the replica runs on this machine."""
    channel = answer.headers.get(REPLICA_CHANNEL_HEADER, "")
    return channel if address == "127.0.0.1" and _CHANNEL.fullmatch(channel) else None


class ReplicaSet:
    """The running replicas of one deployment generation."""

    def __init__(
        self,
        deployment: DeploymentRecord,
        launcher: ReplicaLauncher,
        on_event: Callable[[str], None] = lambda line: None,
    ):
        self.deployment = deployment
        self.name = deployment["deployment_name"]
        self.generation = deployment["generation"]
        self.launcher = launcher
        self.replicas: list[Replica] = []
        self.on_event = on_event
        settings = deployment["request_settings"]
        self.per_instance = settings["max_concurrent_requests_per_instance"]
        self.slots = Slots(self.per_instance)
        self._counter = 0
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self.served = 0  # answered requests (mirrored copies included)
        #: set once start() has finished, well or not: a set the host brings back after a restart serves
        #: traffic at once, and the gateway holds its requests until then (see Gateway.forward)
        self.started = asyncio.Event()

    # -- sizing ---------------------------------------------------------------------------
    @property
    def target_count(self) -> int:
        scale = self.deployment["scale_settings"]
        if scale["type"] == "target_utilization":
            return max(scale["min_instances"], min(scale["max_instances"], self.deployment["instance_count"] or 1))
        return self.deployment["instance_count"]

    def _resize_slots(self) -> None:
        ready = sum(r.ready for r in self.replicas)
        self.slots.resize(self.per_instance * max(ready, 1))

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the replicas and wait until all are ready; on failure stop them and raise."""
        try:
            await asyncio.gather(*(self._add() for _ in range(self.target_count)))
        except BaseException:
            await self.stop(drain=False)
            raise
        finally:
            self.started.set()
        self._tasks.append(asyncio.create_task(self._watch()))
        if self.deployment["scale_settings"]["type"] == "target_utilization":
            self._tasks.append(asyncio.create_task(self._autoscale()))

    async def _add(self) -> Replica:
        self._counter += 1
        replica = await self._launch(f"{self.name}-{self.generation}-{self._counter}")
        self.replicas.append(replica)
        self._resize_slots()
        return replica

    async def launch(self, name: str) -> Replica:
        """Start one replica named ``name`` outside the set (the caller owns it) and wait until it answers its
        readiness probe; ReplicaFailed, with its log tail, when it exits or never gets ready (it is stopped)."""
        return await self._launch(name)

    async def _launch(self, name: str) -> Replica:
        port = free_port()
        handle, address, log_path = await self.launcher.start(name, port)
        replica = Replica(name=name, port=port, handle=handle, log_path=log_path, address=address)
        readiness = self.deployment["readiness_probe"]
        budget = readiness["initial_delay"] + readiness["period"] * readiness["failure_threshold"]
        deadline = time.monotonic() + budget
        try:
            while True:
                code = await asyncio.to_thread(handle.wait, 0) if self.launcher.blocking_wait else handle.wait(0)
                if code is not None:
                    raise ReplicaFailed(
                        f"replica {name} exited with code {code} before it was ready.\n"
                        f"Last lines of its log ({log_path}):\n{log_tail(log_path)}"
                    )
                answer = await probe_answer(address, port, readiness["timeout"])
                if answer is not None:
                    replica.channel = offered_channel(address, answer)
                    break
                if time.monotonic() > deadline:
                    raise ReplicaFailed(
                        f"replica {name} did not answer its readiness probe (GET /) within "
                        f"{budget} s.\nLast lines of its log:\n{log_tail(log_path)}"
                    )
                await asyncio.sleep(0.05)
        except BaseException:  # failed, or cancelled because the host stops: leave no replica running
            await self.launcher.stop(handle)
            raise
        replica.ready = True
        self.on_event(f"replica {name} ready on port {port}")
        return replica

    async def stop(self, drain: bool = True) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*(self._remove(r, drain) for r in list(self.replicas)), return_exceptions=True)

    async def _remove(self, replica: Replica, drain: bool) -> None:
        replica.ready = False
        self._resize_slots()
        deadline = time.monotonic() + self.deployment["request_settings"]["request_timeout_ms"] / 1000
        while drain and replica.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if replica in self.replicas:
            self.replicas.remove(replica)
        replica.close_pool()
        await self.launcher.stop(replica.handle)

    async def scale_to(self, count: int) -> None:
        """Add or remove replicas (new ones serve before old ones are drained)."""
        while len(self.replicas) < count:
            await self._add()
        while len(self.replicas) > count:
            victim = min(self.replicas, key=lambda r: (r.ready, -r.started_at))
            await self._remove(victim, drain=True)

    # -- routing -----------------------------------------------------------------------------------
    def pick(self, exclude: set[str]) -> Replica | None:
        candidates = [r for r in self.replicas if r.ready and r.name not in exclude]
        return min(candidates, key=lambda r: r.in_flight) if candidates else None

    def mark_failed(self, replica: Replica) -> None:
        """A connection to ``replica`` failed: take it out of rotation until the watcher decides."""
        replica.ready = False
        replica.close_pool()
        self._resize_slots()

    # -- health ------------------------------------------------------------------------------------
    async def _watch(self) -> None:
        """Restart dead replicas at once; probe live ones on the liveness schedule."""
        liveness = self.deployment["liveness_probe"]
        next_probe = time.monotonic() + liveness["initial_delay"]
        while not self._stopping:
            await asyncio.sleep(POLL_S)
            probe_now = time.monotonic() >= next_probe
            if probe_now:
                next_probe = time.monotonic() + liveness["period"]
            for replica in list(self.replicas):
                code = (
                    replica.handle.wait(0)
                    if not self.launcher.blocking_wait
                    else await asyncio.to_thread(replica.handle.wait, 0)
                )
                if code is not None:
                    await self._restart(replica, f"exited with code {code}")
                    continue
                if not replica.ready or probe_now:
                    await self._probe(replica, probe_now, liveness)

    async def _probe(self, replica: Replica, scheduled: bool, liveness: dict[str, int]) -> None:
        """A replica out of rotation is probed at once; others on the schedule. Failing
        ``readiness_probe.failure_threshold`` probes takes it out of rotation, failing
        ``liveness_probe.failure_threshold`` restarts it."""
        if await probe(replica.address, replica.port, liveness["timeout"]):
            replica.probe_failures = 0
            if not replica.ready:
                replica.ready = True
                self._resize_slots()
            return
        if not scheduled:
            return
        replica.probe_failures += 1
        if replica.ready and replica.probe_failures >= self.deployment["readiness_probe"]["failure_threshold"]:
            self.on_event(f"replica {replica.name} failed {replica.probe_failures} readiness probes; out of rotation")
            self.mark_failed(replica)
        if replica.probe_failures >= liveness["failure_threshold"]:
            await self._restart(replica, f"failed {replica.probe_failures} liveness probes")

    async def _restart(self, replica: Replica, reason: str) -> None:
        self.on_event(f"replica {replica.name} {reason}; restarting it")
        # it stays listed (not ready) while it restarts, so the autoscaler counts it and never passes
        # max_instances, and the gateway waits for it instead of answering 503
        self.mark_failed(replica)
        await self.launcher.stop(replica.handle)
        try:
            fresh = await self._launch(replica.name)
        except ReplicaFailed as exc:
            self.on_event(f"restart of {replica.name} failed: {exc}")
            replica.handle = _Dead()  # the watcher retries
            return
        if replica not in self.replicas:  # scaled in (or stopped) meanwhile
            await self.launcher.stop(fresh.handle)
            return
        fresh.restarts = replica.restarts + 1
        self.replicas[self.replicas.index(replica)] = fresh
        self._resize_slots()

    async def _autoscale(self) -> None:
        scale = self.deployment["scale_settings"]
        low_polls = 0
        while not self._stopping:
            samples = []
            for _ in range(max(1, int(scale["polling_interval"] / 0.1))):
                await asyncio.sleep(0.1)
                samples.append(self.slots.used / max(self.slots.capacity, 1))
            utilization = 100 * sum(samples) / len(samples)
            count = len(self.replicas)
            if utilization > scale["target_utilization_percentage"] and count < scale["max_instances"]:
                self.on_event(f"utilization {utilization:.0f}% > target: scaling out to {count + 1}")
                low_polls = 0
                await self.scale_to(count + 1)
            elif utilization < scale["target_utilization_percentage"] / 2 and count > scale["min_instances"]:
                low_polls += 1
                if low_polls >= 3:
                    self.on_event(f"utilization {utilization:.0f}%: scaling in to {count - 1}")
                    low_polls = 0
                    await self.scale_to(count - 1)
            else:
                low_polls = 0

    def view(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "served": self.served,
            "replicas": [r.view() for r in self.replicas],
            "in_flight": self.slots.used,
            "capacity": self.slots.capacity,
        }


class _Dead(RunHandle):
    """Stands in for a replica whose restart failed, so the watcher tries again."""

    pid = 0

    def wait(self, timeout=None):
        return -1

    def stop(self):
        pass
