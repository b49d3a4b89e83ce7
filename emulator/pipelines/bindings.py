"""``${{parent...}}`` bindings between a pipeline, its steps and their outputs.

A step input may be a literal, a data input, ``${{parent.inputs.<name>}}`` (a pipeline
input) or ``${{parent.jobs.<step>.outputs.<name>}}`` (an upstream step's output folder);
a step output may be bound to ``${{parent.outputs.<name>}}`` (it becomes that pipeline
output). Mapping forms with the binding in ``path`` (``{path: ${{parent...}}}``, as
azure-ai-ml serialises them) are read the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.errors import ValidationError

_BINDING = re.compile(
    r"^\$\{\{\s*parent\.(?:inputs\.(?P<input>[A-Za-z_]\w*)"
    r"|outputs\.(?P<output>[A-Za-z_]\w*)"
    r"|jobs\.(?P<step>[A-Za-z_][\w-]*)\.outputs\.(?P<step_output>[A-Za-z_]\w*))\s*\}\}$"
)
FORMS = ("${{parent.inputs.<name>}}", "${{parent.jobs.<step>.outputs.<name>}}", "${{parent.outputs.<name>}}")


@dataclass(frozen=True)
class Binding:
    """One parsed binding.

    Attributes:
        kind: ``input`` (a pipeline input), ``output`` (a pipeline output) or
            ``step_output`` (an output of step ``step``).
        name: the input or output name.
        step: the upstream step, for ``step_output``.
    """

    kind: str
    name: str
    step: str | None = None

    def __str__(self) -> str:
        if self.kind == "step_output":
            return f"${{{{parent.jobs.{self.step}.outputs.{self.name}}}}}"
        return f"${{{{parent.{self.kind}s.{self.name}}}}}"


def parse(value: Any, where: str) -> Binding | None:
    """The binding ``value`` holds (a string, or a mapping with it in ``path``), else None.

    Args:
        where: what holds the value, for the error message (``step 'train' input 'data'``).

    Raises:
        ValidationError: a ``${{...}}`` expression that is not one of the binding forms.
    """
    if isinstance(value, dict):
        value = value.get("path")
    if not isinstance(value, str) or "${{" not in value:
        return None
    if value.startswith("azureml://"):  # a datastore path's own ${{name}}, ${{output_name}}: filled in at submit
        return None
    match = _BINDING.match(value.strip())
    if not match:
        raise ValidationError(
            f"{where} is '{value}', which is not a binding amlemu understands. A binding is the whole "
            f"value and one of: {', '.join(FORMS)}."
        )
    if match["input"]:
        return Binding("input", match["input"])
    if match["output"]:
        return Binding("output", match["output"])
    return Binding("step_output", match["step_output"], match["step"])


def resolve_inputs(
    inputs: dict[str, Any], pipeline_inputs: dict[str, dict], step_output_path: Callable[[str, str], str]
) -> dict[str, Any]:
    """A step's inputs with their bindings replaced by what they point at (CLI v2 YAML shape).

    Args:
        inputs: the step's inputs: literals, data inputs, binding strings.
        pipeline_inputs: the pipeline's normalised inputs (``{"type": "literal", "value"}`` or
            ``{"type", "path", "mode"}``).
        step_output_path: the local folder of an upstream step's output, by (step, output).
    """
    resolved: dict[str, Any] = {}
    for key, value in inputs.items():
        binding = parse(value, f"input '{key}'")
        if binding is None:
            resolved[key] = value
        elif binding.kind == "input":
            source = pipeline_inputs[binding.name]
            resolved[key] = source["value"] if source["type"] == "literal" else dict(source)
        else:  # an upstream step's output: its folder, read-only
            resolved[key] = {
                "type": "uri_folder",
                "path": step_output_path(binding.step, binding.name),
                "mode": "ro_mount",
            }
    return resolved
