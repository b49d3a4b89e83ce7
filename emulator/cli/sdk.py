"""Validation that defers to azure-ai-ml when the fast path can't vouch for a spec.

Well-formed specs of the kinds amlemu knows skip the SDK (importing it costs
about 1.5 s). Anything else is loaded with the SDK's own ``load_*`` so the
user gets the SDK's validation message, exactly as ``az ml`` would print it.
"""

from __future__ import annotations

from typing import Any

from emulator.errors import NotEmulated, ValidationError
from emulator.jobs.spec import COMMAND_JOB_FIELDS

FAST_FIELDS = {"job": COMMAND_JOB_FIELDS}


def _fast_ok(kind: str, data: dict) -> bool:
    if kind == "job" and data.get("type", "command") != "command":
        return False
    return set(data) <= FAST_FIELDS.get(kind, set())


def _overrides(sets: list[str] | None) -> list[dict]:
    import yaml

    result = []
    for item in sets or []:
        key, _, raw = item.partition("=")
        result.append({key.strip(): yaml.safe_load(raw) if raw else raw})
    return result


def sdk_load(kind: str, file: str, sets: list[str] | None = None):
    """Load ``file`` with azure-ai-ml's ``load_<kind>``; its validation errors become ours."""
    import azure.ai.ml as aml
    from azure.ai.ml.exceptions import ValidationException

    loader = getattr(aml, f"load_{kind}")
    try:
        return loader(file, params_override=_overrides(sets))
    except ValidationException as exc:
        raise ValidationError(f"{file} failed validation by azure-ai-ml: {exc}") from None
    except Exception as exc:  # marshmallow and YAML errors surface as various types
        raise ValidationError(f"{file} failed validation by azure-ai-ml: {exc}") from None


def validated(kind: str, data: dict[str, Any], file: str | None, sets: list[str] | None) -> dict[str, Any]:
    """``data`` if the fast path vouches for it, else the SDK's reading of ``file``."""
    if _fast_ok(kind, data) or not file:
        return data
    entity = sdk_load(kind, file, sets)
    from backends.entities import job_to_spec

    if kind == "job":
        spec = job_to_spec(entity)
        if data.get("name"):
            spec["name"] = data["name"]
        return spec
    raise NotEmulated(f"{kind} specs of this shape")
