"""Validation that defers to azure-ai-ml when the fast path can't vouch for a spec.

Well-formed specs of the kinds amlemu knows skip the SDK (importing it costs
about 1.5 s). Anything else is loaded with the SDK's own ``load_*`` so the
user gets the SDK's validation message, exactly as ``az ml`` would print it.
"""

from __future__ import annotations

from typing import Any

from emulator import kinds
from emulator.errors import NotEmulated, ValidationError


def _fast_fields(kind: str, data: dict) -> frozenset[str]:
    """The fields the fast path vouches for in a ``kind`` spec shaped like ``data`` (none: ask the SDK)."""
    if kind != "job":
        return frozenset()
    env = data.get("environment")
    if isinstance(env, str) and not env.startswith("azureml:"):
        return frozenset()  # the SDK insists on the azureml: prefix in YAML; let it say so
    try:
        return kinds.kind_of(data).fast_fields
    except NotEmulated:
        return frozenset()  # a type amlemu does not know: the SDK names it, or its NotEmulated follows


def _fast_ok(kind: str, data: dict) -> bool:
    return set(data) <= _fast_fields(kind, data)


def _overrides(sets: list[str] | None) -> list[dict]:
    from emulator.cli.yamlfile import parse_set_value

    result = []
    for item in sets or []:
        key, _, raw = item.partition("=")
        result.append({key.strip(): parse_set_value(raw)})
    return result


def _flatten(messages, prefix: str = "") -> list[str]:
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            out += _flatten(value, f"{prefix}{key}." if key != "_schema" else prefix)
        return out
    if isinstance(messages, (list, tuple)):
        return [m for item in messages for m in _flatten(item, prefix)]
    text = " ".join(str(messages).split())
    return [f"{prefix.rstrip('.')}: {text}" if prefix else text]


def _schema_errors(exc: BaseException) -> list[str]:
    """The field errors of the innermost marshmallow error in ``exc``'s chain."""
    found: list[str] = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        messages = getattr(exc, "messages", None)
        if isinstance(messages, dict) and messages:
            found = _flatten(messages)
        exc = exc.__cause__ or exc.__context__
    return found


def sdk_load(kind: str, file: str, sets: list[str] | None = None):
    """Load ``file`` with azure-ai-ml's ``load_<kind>``; its validation errors become ours."""
    import logging

    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    import azure.ai.ml as aml

    loader = getattr(aml, f"load_{kind}")
    try:
        return loader(file, params_override=_overrides(sets))
    except Exception as exc:  # ValidationException, marshmallow and YAML errors
        errors = _schema_errors(exc) or [" ".join(str(exc).split())[:600]]
        raise ValidationError(
            f"{file} failed validation by azure-ai-ml: {'; '.join(errors)}. Fix the field(s) named; "
            f"the {kind} YAML reference is at https://aka.ms/ml-cli-v2-{kind}-yaml-reference") from None


def validated(kind: str, data: dict[str, Any], file: str | None, sets: list[str] | None) -> dict[str, Any]:
    """``data`` if the fast path vouches for it, else the SDK's reading of ``file``."""
    if _fast_ok(kind, data) or not file:
        return data
    if kind == "job":
        try:
            precheck = kinds.kind_of(data).precheck
        except NotEmulated:
            precheck = None
        if precheck is not None:  # the kind's own message, clearer than the SDK's
            precheck(data)
    entity = sdk_load(kind, file, sets)
    # the SDK's entities are converted by the Python client's converters (they import azure-ai-ml)
    from backends.job_entities import job_to_spec

    if kind == "job":
        spec = job_to_spec(entity)
        if data.get("name"):
            spec["name"] = data["name"]
        return spec
    raise NotEmulated(f"{kind} specs of this shape")
