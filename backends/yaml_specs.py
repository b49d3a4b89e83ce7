"""Reading ``az ml`` CLI v2 YAML files and ``--set`` overrides, for every backend's verbs.

The local verbs read the YAML themselves (a plain command job never pays for
importing azure-ai-ml, about 1.5 s); anything else, and every file on an
``MLClient``-shaped backend, is loaded with azure-ai-ml's own ``load_<kind>``
(:func:`sdk_load`), so the user gets the SDK's validation message as ``az ml``
would print it.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from emulator.errors import ValidationError

#: the flags of `amlemu compute create|update` that set a field of the compute's YAML
COMPUTE_FLAGS = (
    "name",
    "type",
    "size",
    "tier",
    "description",
    "namespace",
    "min_instances",
    "max_instances",
    "idle_time_before_scale_down",
)


def load_yaml_file(path: str | None) -> tuple[dict[str, Any], Path]:
    """The YAML mapping in ``path`` and the folder relative paths resolve from."""
    if not path:
        return {}, Path.cwd()
    file = Path(path)
    if not file.is_file():
        raise ValidationError(f"File '{path}' not found. Check the --file path.")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError(
            f"{path} is not valid YAML{where}: {problem}. Fix the YAML syntax "
            "(indentation, a missing ':' or an unclosed quote or bracket)."
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError(f"{path} must hold a YAML mapping (key: value lines), not a {type(data).__name__}.")
    return data, file.resolve().parent


def parse_set_value(raw: str) -> Any:
    """A ``--set`` value as ``az`` reads it: JSON when it parses (numbers, booleans, lists), else text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _split_set(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ValidationError(f"--set '{item}' must look like path.to.field=value.")
    key, raw = item.split("=", 1)
    return key.strip(), parse_set_value(raw)


def apply_sets(data: dict[str, Any], sets: list[str] | None) -> dict[str, Any]:
    """Apply ``--set a.b.c=value`` overrides (values parsed as YAML scalars)."""
    for item in sets or []:
        key, value = _split_set(item)
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                # inputs.x.path=... on a literal input turns it into a data input
                child = {} if child is None or not isinstance(child, (str, int, float, bool)) else {"value": child}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return data


def set_overrides(sets: list[str] | None) -> list[dict[str, Any]]:
    """``--set`` overrides as azure-ai-ml's ``params_override`` (``[{"inputs.C": 0.8}, ...]``)."""
    return [dict([_split_set(item)]) for item in sets or []]


def parse_traffic(text: str, flag: str) -> dict[str, int]:
    """``"blue=90 green=10"`` (az ml's form of ``--traffic``) as a dict."""
    out: dict[str, int] = {}
    for item in text.replace(",", " ").split():
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValidationError(f"{flag} '{text}' must look like \"blue=90 green=10\" (whole percentages).")
        out[name] = int(value)
    return out


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


def sdk_load(kind: str, file: str | None, sets: list[str] | None = None, *, fields: dict[str, Any] | None = None):
    """An azure-ai-ml entity: ``file`` loaded with ``load_<kind>``, the flag ``fields`` (``--name`` ...)
    and the ``--set`` overrides applied as ``params_override``; with no ``file``, the entity the
    flags alone describe (relative paths from the current folder). Validation errors become ours."""
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    import azure.ai.ml as aml  # here, not at import: the local fast path never loads the SDK

    loader = getattr(aml, f"load_{kind}")
    flags = [{key: value} for key, value in (fields or {}).items() if value is not None]
    source = file if file else io.StringIO(yaml.safe_dump({}))
    try:
        return loader(source, params_override=flags + set_overrides(sets))
    except ValidationError:
        raise
    except Exception as exc:  # ValidationException, marshmallow and YAML errors
        errors = _schema_errors(exc) or [" ".join(str(exc).split())[:600]]
        raise ValidationError(
            f"{file or 'The ' + kind + ' flags'} failed validation by azure-ai-ml: {'; '.join(errors)}. Fix the "
            f"field(s) named; the {kind} YAML reference is at https://aka.ms/ml-cli-v2-{kind}-yaml-reference"
        ) from None
