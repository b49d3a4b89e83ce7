"""Reading CLI v2 YAML files and applying ``--set`` overrides, with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from emulator.errors import ValidationError


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
        raise ValidationError(f"{path} is not valid YAML{where}: {problem}. Fix the YAML syntax "
                              "(indentation, a missing ':' or an unclosed quote or bracket).") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError(f"{path} must hold a YAML mapping (key: value lines), not a "
                              f"{type(data).__name__}.")
    return data, file.resolve().parent


def parse_set_value(raw: str) -> Any:
    """A ``--set`` value as ``az`` reads it: JSON when it parses (numbers, booleans, lists), else text."""
    import json

    try:
        return json.loads(raw)
    except ValueError:
        return raw


def apply_sets(data: dict[str, Any], sets: list[str] | None) -> dict[str, Any]:
    """Apply ``--set a.b.c=value`` overrides (values parsed as YAML scalars)."""
    for item in sets or []:
        if "=" not in item:
            raise ValidationError(f"--set '{item}' must look like path.to.field=value.")
        key, raw = item.split("=", 1)
        value = parse_set_value(raw)
        parts = key.strip().split(".")
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
