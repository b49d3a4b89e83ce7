"""What every Azure-shaped view shares: ARM resource ids, timestamps, creation context, schema URLs.

The concepts' views (``az ml`` JSON, and the SDK entities built from it) and the
front doors take these from here, so an id or a timestamp has one spelling.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from emulator import config

#: where ``az ml`` points ``$schema`` in the JSON it prints
SCHEMAS = "https://azuremlschemas.azureedge.net/latest"


def iso(ts: float | None) -> str | None:
    """An epoch time as Azure prints it (ISO 8601, UTC, ``Z``)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def arm_id(workspace: str, tail: str) -> str:
    """The ``azureml:``-prefixed ARM id of ``tail`` (``jobs/<name>``, ``models/<n>/versions/<v>``, ...)."""
    return (
        f"azureml:/subscriptions/{config.SUBSCRIPTION_ID}/resourceGroups/{config.RESOURCE_GROUP}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{workspace}/{tail}"
    )


def creation_context(created_at: float, by: str | None, modified_at: float | None = None) -> dict[str, Any]:
    """``creation_context`` as ``az ml`` shows it."""
    ctx = {"created_at": iso(created_at), "created_by": by or "local user", "created_by_type": "User"}
    if modified_at:
        ctx["last_modified_at"] = iso(modified_at)
    return ctx


def resource_id(workspace: str, tail: str) -> str:
    """The ARM id of ``tail`` as the REST API spells it (no ``azureml:`` prefix)."""
    return arm_id(workspace, tail).removeprefix("azureml:")


def system_data(created_at: float, by: str | None, modified_at: float | None = None) -> dict[str, Any]:
    """``systemData`` as the Azure ML REST API returns it (the ARM resource's ``creation_context``)."""
    data = {"createdAt": iso(created_at), "createdBy": by or "local user", "createdByType": "User"}
    if modified_at:
        data.update(lastModifiedAt=iso(modified_at), lastModifiedBy=by or "local user", lastModifiedByType="User")
    return data
