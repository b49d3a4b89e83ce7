"""azure-ai-ml ``PipelineJob`` entities to and from the engine's pipeline specs and records.

In: a ``PipelineJob`` from ``load_job`` (CLI v2 YAML, with inline or ``file:`` command
components) or from the ``@pipeline`` DSL with ``command()`` / ``load_component`` steps
becomes the pipeline YAML shape the engine validates, every path absolute, every
binding a ``${{parent...}}`` string; a step naming a registered component
(``component: azureml:train:1``) keeps the reference, which the engine resolves.
Out: a record becomes a ``PipelineJob`` with status,
id, creation context and its steps as ``command`` nodes.

Limits of the record → entity direction (best effort): steps carry their command,
code, environment, compute, inputs and outputs, not the component's metadata
(name, version, input declarations); each step's child job and status are in the
job's ``properties`` as ``amlemu.steps.<step>.job_name`` / ``.status``; use
``ml_client.jobs.list(parent_job_name=...)`` for the child jobs themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output, command
from azure.ai.ml.entities import CommandComponent, PipelineJob, PipelineJobSettings
from azure.ai.ml.entities._builders.command import Command

from backends.entities import header_spec, inline_environment, is_local_path, local_code, local_path, view_system_data
from emulator.errors import NotEmulated
from emulator.store import WorkspaceStore

LITERAL_TYPES = ("string", "integer", "number", "boolean")


def _input(value: Any, base: Path, default: Any = None) -> Any:
    """One input as YAML: a literal, a data mapping with an absolute path, or a binding string."""
    if value is None:
        return default
    binding = getattr(value, "_data_binding", None)
    if binding is not None:  # PipelineInput / NodeOutput from the DSL
        return binding()
    if isinstance(value, Input) or isinstance(value, dict):
        kind = value.get("type") or "uri_folder"
        if kind in LITERAL_TYPES:
            return value.get("default", value.get("value"))
        path = value.get("path")
        if isinstance(path, str) and "${{" not in path:
            path = local_path(path, base)
        return {k: v for k, v in {"type": kind, "path": path, "mode": value.get("mode")}.items() if v is not None}
    return value


def _output(value: Any, declared: Any = None) -> Any:
    """One output as YAML: ``{type, mode}`` or a ``${{parent.outputs.<name>}}`` binding string."""
    binding = getattr(value, "_data_binding", None)
    if binding is not None:  # PipelineOutput from the DSL
        return binding()
    if isinstance(value, str):
        return value
    source = value if value is not None else declared
    if source is None:
        return {"type": "uri_folder"}
    fields = {"type": source.get("type") or "uri_folder", "mode": source.get("mode"), "path": source.get("path")}
    return {k: v for k, v in fields.items() if v}  # a path: the datastore path a step output is written to


def _component_default(port: Any) -> Any:
    default = getattr(port, "default", None) if port is not None else None
    if default is None:
        return None
    kind = getattr(port, "type", None)
    try:  # azure-ai-ml keeps YAML defaults as strings ('3'); the declared type says what they are
        return {"integer": int, "number": float}.get(kind, lambda v: v)(default)
    except (TypeError, ValueError):
        return default


def _step_to_spec(step: str, node: Any, base: Path) -> dict[str, Any]:
    if not isinstance(node, Command):
        kind = getattr(node, "type", None) or type(node).__name__
        raise NotEmulated(
            f"{kind} steps in pipeline jobs (step '{step}')",
            "Pipeline steps are emulated as command jobs only so far: use command() or a command component.",
        )
    component = node.component
    if isinstance(component, str):  # a registered component (azureml:<name>:<version>): the engine resolves it
        return _registered_step_to_spec(node, component, base)
    if not isinstance(component, CommandComponent):
        raise NotEmulated(f"{type(component).__name__} in pipeline step '{step}'")
    if node.distribution is not None:
        raise NotEmulated(f"distributed steps (distribution=..., step '{step}')", "Run the step on one node.")
    component_base = Path(component.base_path or base)
    code = local_code(component.code, f"code (step '{step}')")
    if code and is_local_path(code):
        code = str((component_base / code).resolve())
    environment = inline_environment(node.environment or component.environment)
    declared_in, declared_out = component.inputs or {}, component.outputs or {}
    inputs = {}
    for key in {**declared_in, **(node.inputs or {})}:
        port = (node.inputs or {}).get(key)
        value = _input(getattr(port, "_data", None), base, _component_default(declared_in.get(key)))
        if value is not None:
            inputs[key] = value
    outputs = {
        key: _output(getattr((node.outputs or {}).get(key), "_data", None), declared_out.get(key))
        for key in {**declared_out, **(node.outputs or {})}
    }
    spec = {
        "type": "command",
        **_node_fields(node),
        "command": component.command,
        "code": code,
        "environment": environment,
        "inputs": inputs,
        "outputs": outputs,
    }
    return {k: v for k, v in spec.items() if v is not None}


def _node_fields(node: Any) -> dict[str, Any]:
    """What a step sets on top of its component: compute, display name, environment variables, limits, ..."""
    limits = getattr(node, "limits", None)
    resources = node.resources
    return {
        "display_name": node.display_name,
        "description": node.description,
        "tags": dict(node.tags or {}) or None,
        "compute": node.compute,
        "environment_variables": dict(node.environment_variables or {}) or None,
        "resources": {"instance_count": resources.instance_count} if resources and resources.instance_count else None,
        "limits": {"timeout": limits.timeout} if limits is not None and getattr(limits, "timeout", None) else None,
    }


def _registered_step_to_spec(node: Any, component: str, base: Path) -> dict[str, Any]:
    """A step naming a registered component: the reference and what the step gives (its inputs, outputs, compute,
    ...); the engine fills in the component (:mod:`emulator.pipelines.components`)."""
    spec = {
        "type": "command",
        # load_job drops the azureml: of azureml:<name>:<version>; the engine's reference keeps it
        "component": component if component.startswith("azureml:") else f"azureml:{component}",
        **_node_fields(node),
        "inputs": {
            key: value
            for key, port in (node.inputs or {}).items()
            if (value := _input(getattr(port, "_data", None), base)) is not None
        },
        "outputs": {
            key: _output(data)
            for key, port in (node.outputs or {}).items()
            if (data := getattr(port, "_data", None)) is not None
        },
    }
    return {k: v for k, v in spec.items() if v is not None}


def to_spec(job: Any, base: Path) -> dict[str, Any]:
    """A ``PipelineJob`` as a pipeline-job YAML dict with absolute paths (steps inline)."""
    settings = job.settings
    spec = {
        **header_spec(job, "pipeline"),
        "settings": {
            k: v
            for k, v in {
                "default_compute": getattr(settings, "default_compute", None),
                "default_datastore": getattr(settings, "default_datastore", None),
                "continue_on_step_failure": getattr(settings, "continue_on_step_failure", None),
                "force_rerun": getattr(settings, "force_rerun", None),
                "on_init": getattr(settings, "on_init", None),
                "on_finalize": getattr(settings, "on_finalize", None),
            }.items()
            if v is not None
        },
        "inputs": {k: _input(getattr(v, "_data", v), base) for k, v in (job.inputs or {}).items()},
        "outputs": {k: _output(getattr(v, "_data", v)) for k, v in (job.outputs or {}).items()},
        "jobs": {step: _step_to_spec(step, node, base) for step, node in (job.jobs or {}).items()},
    }
    return {k: v for k, v in spec.items() if v is not None}


def from_view(store: WorkspaceStore, record: dict[str, Any], view: dict[str, Any]):
    """A ``PipelineJob`` with status, id, creation context and steps: the header and each step's
    child job from the view, the steps themselves from the record (the view shows bindings resolved)."""
    spec = record["spec"]

    def as_input(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("type") == "literal":
                return value["value"]
            return Input(type=value["type"], path=value["path"], mode=value.get("mode"))
        return value

    bound = {(out["step"], out["output"]): key for key, out in spec["outputs"].items()}
    steps = {}
    for step, node in spec["jobs"].items():
        job = node["job"]
        environment = job.get("environment")
        node = command(
            name=step,
            display_name=job.get("display_name") or step,
            command=job["command"],
            code=job.get("code"),
            environment=environment if isinstance(environment, str) else None,
            compute=job.get("compute"),
            environment_variables=job.get("environment_variables"),
            inputs={k: as_input(v) for k, v in (job.get("inputs") or {}).items()},
            outputs={k: Output(type=v["type"], mode=v["mode"]) for k, v in job.get("outputs", {}).items()},
        )
        for key in job.get("outputs", {}):
            if (step, key) in bound:  # bound after construction, as the DSL does
                setattr(node.outputs, key, f"${{{{parent.outputs.{bound[(step, key)]}}}}}")
        steps[step] = node
    properties = dict(view["properties"])
    for step in spec["jobs"]:
        shown = view["jobs"][step]
        properties[f"amlemu.steps.{step}.job_name"] = shown.get("job_name") or ""
        properties[f"amlemu.steps.{step}.status"] = shown["status"]
    if record.get("error"):
        properties["amlemu.error"] = record["error"]
    settings = spec["settings"]
    return PipelineJob(
        name=view["name"],
        display_name=view["display_name"],
        description=view.get("description"),
        tags=view["tags"],
        properties=properties,
        experiment_name=view["experiment_name"],
        compute=spec.get("compute"),
        settings=PipelineJobSettings(
            default_compute=settings.get("default_compute"),
            default_datastore=settings.get("default_datastore"),
            continue_on_step_failure=settings["continue_on_step_failure"],
        ),
        inputs={k: as_input(v) for k, v in spec["inputs"].items()},
        outputs={
            k: Output(type=v["type"], mode=v["mode"], path=str(store.job_dir(record["name"]) / "outputs" / k))
            for k, v in spec["outputs"].items()
        },
        jobs=steps,
        status=view["status"],
        creation_context=view_system_data(view["creation_context"]),
        id=view["id"],
    )
