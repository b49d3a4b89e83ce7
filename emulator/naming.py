"""Names that become paths: Azure ML's rule for each kind of name, and one confined join.

Every name a user chooses that ends up as a folder or file name (workspace, job, job input and
output, model and its version, environment, data asset, compute, endpoint, deployment) is
checked here, against the rule Azure ML applies to that resource, before anything is recorded
or written. Every write of such a path then goes through :func:`confined_join`, which refuses
to leave its root, even through a symlink.

The rules and where they come from (Azure's resource provider, ARM API 2024-04-01, and the
azure-ai-ml SDK):

- workspace: ARM ``workspaces`` name pattern ``^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$``.
- job: ARM ``workspaces/jobs`` name pattern ``^[a-zA-Z0-9][a-zA-Z0-9\\-_]{0,254}$``.
- model, environment, data asset: ARM ``workspaces/models|environments|data`` name pattern
  ``^[a-zA-Z0-9][a-zA-Z0-9\\-_]{0,254}$``, plus ``.``, which Azure's own curated environment
  names carry (``AzureML-sklearn-1.5``) and the v1 SDK accepted in model names.
- asset version: ARM sets no pattern; Azure takes versions in ``name:version`` references and
  URL paths, so the emulator takes the asset-name characters (letters, digits, ``.``, ``_``,
  ``-``, a letter or digit first, at most 255).
- datastore: Azure ML's datastore rule (the service's and the v1 SDK's message: letters, digits
  and ``_``), at most 255 here.
- job input and output: azure-ai-ml ``validate_key_contains_allowed_characters``,
  ``^[a-zA-Z_]+[a-zA-Z0-9_]*$`` (at most 255 here: it becomes a folder name).
- online endpoint and deployment: azure-ai-ml ``validate_endpoint_or_deployment_name``
  (``EndpointConfigurations``): 3-32 characters, a letter first, letters, digits and ``-``,
  not ending with ``-``.
- compute cluster (amlcompute): 2-16, instance: 3-24 (Azure ML's compute name messages),
  attached Kubernetes compute: 3-32; a letter first, letters, digits and ``-``, not ending
  with ``-``.

Patterns are matched with ``fullmatch`` over ASCII classes only: a trailing newline, a NUL,
``/``, ``..`` and Unicode look-alikes (fullwidth ``／``, ``．``) never match.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from emulator.errors import ValidationError


class Rule(NamedTuple):
    label: str  # what the name is, for messages ("Model name")
    pattern: re.Pattern
    text: str  # the rule in words, for messages


def _rule(label: str, pattern: str, text: str) -> Rule:
    return Rule(label, re.compile(pattern, re.ASCII), text)


_ASSET = r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}"
_ASSET_TEXT = "1-255 letters, digits, '.', '_' and '-', starting with a letter or digit"
_DASHED = "characters: letters, digits and '-', starting with a letter and not ending with '-'"

RULES: dict[str, Rule] = {
    "workspace": _rule(
        "Workspace name",
        r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}",
        "3-33 letters, digits, '_' and '-', starting with a letter or digit",
    ),
    "job": _rule(
        "Job name",
        r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}",
        "1-255 letters, digits, '_' and '-', starting with a letter or digit",
    ),
    "model": _rule("Model name", _ASSET, _ASSET_TEXT),
    "environment": _rule("Environment name", _ASSET, _ASSET_TEXT),
    "data": _rule("Data asset name", _ASSET, _ASSET_TEXT),
    "version": _rule("Version", _ASSET, _ASSET_TEXT),
    "datastore": _rule("Datastore name", r"[a-zA-Z0-9_]{1,255}", "1-255 letters, digits and '_'"),
    "input": _rule(
        "Input name", r"[a-zA-Z_][a-zA-Z0-9_]{0,254}", "1-255 letters, digits and '_', starting with a letter or '_'"
    ),
    "output": _rule(
        "Output name", r"[a-zA-Z_][a-zA-Z0-9_]{0,254}", "1-255 letters, digits and '_', starting with a letter or '_'"
    ),
    "endpoint": _rule("Endpoint name", r"[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]", "3-32 " + _DASHED),
    "deployment": _rule("Deployment name", r"[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]", "3-32 " + _DASHED),
    "amlcompute": _rule("Compute cluster name", r"[a-zA-Z][a-zA-Z0-9-]{0,14}[a-zA-Z0-9]", "2-16 " + _DASHED),
    "computeinstance": _rule("Compute instance name", r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]", "3-24 " + _DASHED),
    "kubernetes": _rule("Kubernetes compute name", r"[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]", "3-32 " + _DASHED),
}


def shown(value: Any, limit: int = 120) -> str:
    """``value`` for a message: its repr, cut short past ``limit`` characters (a client may send anything)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]}...' ({len(str(value))} characters)"


def is_valid(kind: str, value: Any) -> bool:
    """Whether ``value`` follows the rule for ``kind`` (a key of :data:`RULES`)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return False
    return RULES[kind].pattern.fullmatch(str(value)) is not None


def check(kind: str, value: Any, where: str = "") -> str:
    """``value`` as a string if it follows Azure ML's rule for ``kind``, else a ValidationError
    naming the value, the rule and the fix. ``where`` adds context ("in job 'x'")."""
    if is_valid(kind, value):
        return str(value)
    rule = RULES[kind]
    if value is None or value == "":
        problem = f"{rule.label} is missing{' ' + where if where else ''}"
    else:
        problem = f"{rule.label} {shown(value)}{' ' + where if where else ''} is invalid"
    raise ValidationError(
        f"{problem}: Azure ML takes {rule.text}. Rename it (no '/', '..', spaces or "
        "other characters: the name becomes a folder name)."
    )


def confined_join(root: str | os.PathLike, *parts: str) -> Path:
    """``root / parts...``, refused unless it stays inside ``root``.

    Each part may hold several ``/``-separated segments (a relative path inside the root), but
    no segment may be empty or absolute, be ``..``, hold a NUL, or be longer than a file name
    may be; and the joined path, with symlinks resolved, must lie inside the resolved root.
    The result is the joined path as given (not resolved).
    """
    root = Path(root)
    path = root
    for part in parts:
        text = os.fspath(part)
        if not isinstance(text, str) or not text:
            raise ValidationError(f"Path part {part!r} under {root} is empty or not text.")
        if "\0" in text:
            raise ValidationError(f"Path part {shown(text)} under {root} holds a NUL character.")
        if text.startswith(("/", "\\")) or os.path.isabs(text):
            raise ValidationError(f"Path part {shown(text)} is absolute; it must stay inside {root}.")
        for segment in text.split("/"):
            if segment in ("", ".."):
                raise ValidationError(
                    f"Path part {shown(text)} leaves {root} (or has an empty segment); use a plain name."
                )
            if len(segment.encode("utf-8", "surrogateescape")) > 255:
                raise ValidationError(
                    f"Path part {shown(segment)} is longer than a file name may be (255 bytes); use a shorter name."
                )
        path = path / text
    real_root = root.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise ValidationError(
            f"{path} leads outside {real_root} (through a symlink); refusing to "
            "write there. Remove the symlink or pick another name."
        )
    return path
