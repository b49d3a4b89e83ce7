"""Injected endpoint faults: the gateway answers 429, 503 or a request timeout instead of the deployment.

The faults are records of the workspace's store (:mod:`emulator.store.faults`, set by ``aml_faults``). The
gateway never reads the store on a request: its host reads the endpoint's faults when it reloads (at start, and
when told: ``aml_faults`` calls the host's ``reload`` route after setting or clearing one) and hands the gateway
an :class:`EndpointFaults`; with none set the gateway holds an empty tuple, and its whole cost per request is
one truth test. The gateway counts the requests a fault answers itself, so a fault set for ``count`` requests
answers exactly that many, whatever the host reloads meanwhile.

The answers are those Azure ML documents for managed online endpoints ("Troubleshoot online endpoint deployment
and scoring", HTTP status codes): 429 *Too many pending requests*, and 408 *Request timeout* once
``request_settings.request_timeout_ms`` has passed; 503 as Azure answers while a deployment cannot take the
request (no capacity while it scales). Azure documents no ``Retry-After`` header on these answers, so none is
sent. Each message ends with ``[aml_faults]``, so a log shows which answers were injected.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from emulator.endpoints.gateway import _json
from emulator.store import faults as store_faults
from emulator.store.db import WorkspaceStore

if TYPE_CHECKING:
    from emulator.endpoints.gateway import Gateway

#: the statuses an endpoint fault may answer with ("timeout": 408 after the deployment's request timeout)
STATUSES = (429, 503, "timeout")
MARK = "[aml_faults]"


class EndpointFaults:
    """The faults one endpoint's gateway applies, oldest first, with the requests each still answers."""

    def __init__(self, faults: list[store_faults.Fault], remaining: dict[str, int | None]):
        self.faults = faults
        self.remaining = remaining  # fault id -> requests it still answers (None: until cleared; 0: spent)

    def __bool__(self) -> bool:
        return any(self.remaining[f.id] != 0 for f in self.faults)

    async def answer(self, gateway: Gateway, deployment: str) -> tuple[int, dict, bytes] | None:
        """The injected answer to a request routed to ``deployment``, or None to serve it."""
        for fault in self.faults:
            left = self.remaining[fault.id]
            if left == 0 or fault.detail.get("deployment") not in (None, deployment):
                continue
            if left is not None:
                self.remaining[fault.id] = left - 1
            return await _answer(fault.detail["status"], gateway, deployment)
        return None


async def _answer(status: int | str, gateway: Gateway, deployment: str) -> tuple[int, dict, bytes]:
    settings = gateway.sets[deployment].deployment["request_settings"]
    if status == 429:
        return _json(
            429,
            f"Too many pending requests for deployment '{deployment}': it is getting more requests than it can "
            "handle. Retry with exponential backoff, or raise request_settings / instance_count. " + MARK,
        )
    if status == 503:
        return _json(
            503,
            f"Deployment '{deployment}' is temporarily unavailable: it cannot take more requests while it scales. "
            "Retry with exponential backoff. " + MARK,
        )
    await asyncio.sleep(settings["request_timeout_ms"] / 1000)  # as long as a request the model never answers
    return _json(
        408,
        f"Request timeout: deployment '{deployment}' did not answer within request_timeout_ms "
        f"({settings['request_timeout_ms']} ms). " + MARK,
    )


def installed(store: WorkspaceStore, endpoint: str, current: Any) -> EndpointFaults | tuple:
    """The faults ``endpoint``'s gateway applies from now: those in the store, each with the requests it still
    answers (``current``: what the gateway held, so a reload never resets a count); ``()`` when none are set."""
    found = store_faults.active(store, "endpoint", endpoint)
    if not found:
        return ()
    known = current.remaining if isinstance(current, EndpointFaults) else {}
    return EndpointFaults(found, {f.id: known.get(f.id, f.remaining) for f in found})
