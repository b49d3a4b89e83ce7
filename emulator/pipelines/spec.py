"""Pipeline job specs: validated, bindings checked and local paths resolved, before anything is recorded.

The input is the CLI v2 YAML shape (``type: pipeline``, ``inputs``, ``outputs``,
``settings``, ``jobs``) with inline command steps or steps naming a registered command component
(``component: azureml:<name>:<version>``, :mod:`.components`), whether it came from a YAML file or
from an azure-ai-ml ``PipelineJob`` (``backends.pipeline_entities`` converts one to it).
Each step is checked as the command job it becomes, with placeholders for its bindings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import naming
from emulator.errors import EmulatorError, NotEmulated, ValidationError
from emulator.jobs.spec import JOB_HEADER_FIELDS, check_job_fields, job_header, normalize_command_job, normalize_input
from emulator.pipelines import bindings, components
from emulator.pipelines.graph import StepGraph
from emulator.store import WorkspaceStore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import PipelineJobSpec, PipelineSettings

PIPELINE_JOB_FIELDS = JOB_HEADER_FIELDS | {
    "settings",
    "inputs",
    "outputs",
    "jobs",
    "identity",
}
SETTINGS = {"default_compute", "default_datastore", "continue_on_step_failure", "force_rerun"}
STEP_NAME = re.compile(r"[A-Za-z_][\w-]{0,254}", re.ASCII)
#: step fields the pipeline owns: a step's child job gets a generated name and the pipeline's experiment
_PIPELINE_OWNED = ("name", "experiment_name", "parent_job_name")


@contextmanager
def in_step(step: str) -> Iterator[None]:
    """Prefix an engine error raised while handling ``step`` with the step's name."""
    try:
        yield
    except EmulatorError as exc:
        exc.message = f"Pipeline step '{step}': {exc.message}"
        exc.args = (exc.message,)
        raise


def _settings(data: dict[str, Any]) -> PipelineSettings:
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise ValidationError(
            "settings must be a mapping (default_compute, default_datastore, continue_on_step_failure)."
        )
    for hook in ("on_init", "on_finalize"):
        if settings.get(hook):
            raise NotEmulated(f"pipeline settings.{hook}", "Remove it; run the step as an ordinary step.")
    unknown = set(settings) - SETTINGS - {"on_init", "on_finalize"}
    if unknown:
        raise ValidationError(
            f"Unknown pipeline setting(s) {', '.join(sorted(unknown))}. Valid settings: {', '.join(sorted(SETTINGS))}."
        )
    flag = settings.get("continue_on_step_failure", False)
    if not isinstance(flag, bool):
        raise ValidationError(f"settings.continue_on_step_failure must be true or false, not {flag!r}.")
    datastore = settings.get("default_datastore")
    if datastore is not None and not str(datastore).startswith("azureml:"):
        raise ValidationError(
            f"settings.default_datastore '{datastore}' must use the azureml:<datastore-name> "
            "syntax, e.g. azureml:workspaceblobstore."
        )
    return {
        "default_compute": settings.get("default_compute"),
        "default_datastore": datastore,
        "continue_on_step_failure": flag,
        "force_rerun": settings.get("force_rerun"),
    }


def _pipeline_outputs(data: dict[str, Any]) -> tuple[dict[str, dict], dict[str, bindings.Binding]]:
    """Declared pipeline outputs, and those bound at pipeline level to a step output."""
    outputs, sources = {}, {}
    for key, value in (data.get("outputs") or {}).items():
        naming.check("output", key, "of the pipeline")  # it becomes the output's folder
        binding = bindings.parse(value, f"Pipeline output '{key}'")
        if binding is not None:
            if binding.kind != "step_output":
                raise ValidationError(
                    f"Pipeline output '{key}' is bound to {binding}; a pipeline output can "
                    "only take a step's output: ${{parent.jobs.<step>.outputs.<name>}}."
                )
            sources[key] = binding
        value = value if isinstance(value, dict) else {}
        outputs[key] = {"type": value.get("type") or "uri_folder", "mode": value.get("mode") or "rw_mount"}
    return outputs, sources


def _step(
    step: str, raw: Any, data: dict, settings: dict, inputs: dict, base_path: Path, store: WorkspaceStore | None = None
) -> tuple[dict, dict[str, Any]]:
    """One step as the command job dict it runs as (bindings kept as strings), and its bindings.

    Returns:
        ``(job, bound)``: ``bound`` maps ``("input"|"output", name)`` to that port's Binding.
    """
    where = f"Pipeline step '{step}'"
    kind = raw.get("type", "command")
    if kind != "command":
        raise NotEmulated(
            f"{kind} steps in pipeline jobs (step '{step}')", "Pipeline steps are emulated as command jobs only so far."
        )
    if "component" in raw:
        raw = _registered_component_step(step, raw, store)
    job = {k: v for k, v in raw.items() if k not in _PIPELINE_OWNED}
    job["type"] = "command"
    bound: dict[tuple[str, str], bindings.Binding] = {}
    placeholders: dict[str, Any] = {}
    for key, value in (job.get("inputs") or {}).items():
        binding = bindings.parse(value, f"{where} input '{key}'")
        if binding is None:
            placeholders[key] = value
            continue
        if binding.kind == "output":
            raise ValidationError(
                f"{where} input '{key}' is bound to {binding}, a pipeline output. Inputs take "
                "${{parent.inputs.<name>}} or ${{parent.jobs.<step>.outputs.<name>}}."
            )
        if binding.kind == "input" and binding.name not in inputs:
            raise ValidationError(
                f"{where} input '{key}' refers to {binding}, but the pipeline has no input "
                f"'{binding.name}' (inputs: {', '.join(inputs) or 'none'}). Add it under the "
                "pipeline's 'inputs:' or fix the name."
            )
        bound[("input", key)] = binding
        placeholders[key] = ""  # checked as a literal: the command's references to it stay valid
    outputs = {}
    for key, value in (job.get("outputs") or {}).items():
        binding = bindings.parse(value, f"{where} output '{key}'")
        if binding is not None:
            if binding.kind != "output":
                raise ValidationError(
                    f"{where} output '{key}' is bound to {binding}; a step output can only "
                    "be bound to a pipeline output: ${{parent.outputs.<name>}}."
                )
            bound[("output", key)] = binding
            value = {k: v for k, v in value.items() if k != "path"} if isinstance(value, dict) else None
        outputs[key] = value
    with in_step(step):
        normalized = normalize_command_job({**job, "inputs": placeholders, "outputs": outputs}, base_path, store)
    job["code"] = normalized["code"]
    job["inputs"] = {}
    for key in raw.get("inputs") or {}:
        if ("input", key) in bound:
            job["inputs"][key] = str(bound[("input", key)])
        else:
            norm = normalized["inputs"][key]
            job["inputs"][key] = norm["value"] if norm["type"] == "literal" else norm
    job["outputs"] = normalized["outputs"]
    job["compute"] = job.get("compute") or settings["default_compute"] or data.get("compute")
    return {k: v for k, v in job.items() if v is not None}, bound


def _registered_component_step(step: str, raw: dict[str, Any], store: WorkspaceStore | None) -> dict[str, Any]:
    """A step that names a registered component (``component: azureml:<name>:<version>`` or ``@latest``) as the
    command job it runs; any other ``component:`` is refused (azure-ai-ml's load_job inlines a file component)."""
    reference = raw["component"]
    where = f"Pipeline step '{step}'"
    if not (isinstance(reference, str) and reference.startswith("azureml:")):
        raise NotEmulated(
            f"'component:' {naming.shown(reference)} in pipeline steps (step '{step}')",
            "Name a registered component (component: azureml:<name>:<version>), or inline the component (command, "
            "code, environment, inputs, outputs) in the step; azure-ai-ml's load_job inlines file components for "
            "you (`amlemu job create` and ml_client.jobs.create_or_update do so).",
        )
    if store is None:
        raise ValidationError(f"{where} names component {reference}: a registered component needs its workspace.")
    with in_step(step):
        record = components.resolve(store, reference, "The step's component")
    return components.step_job(record, {k: v for k, v in raw.items() if k != "component"}, where)


def check_steps(data: dict[str, Any]) -> None:
    """Cheap checks of a pipeline's steps as written: present, well named, each with a command.

    They need no paths, so a front door can run them on the YAML before azure-ai-ml reads
    it (whose message for a step without a command lists every step type it tried).
    """
    steps = data.get("jobs")
    if not steps or not isinstance(steps, dict):
        raise ValidationError(
            "The pipeline has no 'jobs'. Add its steps under 'jobs:', each a command job "
            "(command, code, environment, inputs, outputs)."
        )
    for step, raw in steps.items():
        where = f"Pipeline step '{step}'"
        if not STEP_NAME.fullmatch(str(step)):
            raise ValidationError(
                f"{where}: step names start with a letter or '_' and hold letters, digits, "
                "'_' and '-'. Rename the step under 'jobs:'."
            )
        if not isinstance(raw, dict):
            raise ValidationError(f"{where} must be a mapping (a command job: command, code, environment, ...).")
        if raw.get("type", "command") == "command" and "component" not in raw and not raw.get("command"):
            raise ValidationError(
                f"{where} has no 'command'. Add the command line it runs, "
                "e.g. command: python prep.py --out ${{outputs.prepared}}"
            )


def normalize_pipeline_job(
    data: dict[str, Any], base_path: Path, store: WorkspaceStore | None = None
) -> PipelineJobSpec:
    """Validate a pipeline job (CLI v2 YAML shape) and resolve everything local (with the workspace ``store``:
    the data assets and datastore paths of its inputs and its steps' own inputs and outputs too).

    Checks every step as a command job, every binding against the steps and outputs it
    names, that pipeline outputs are bound exactly once, and that the steps form no cycle.

    Raises:
        ValidationError: naming the field, step or binding that is wrong and how to fix it.
        NotEmulated: a step shape amlemu does not run (sweep or parallel steps, a component by file or URL).
    """
    name = check_job_fields(data, PIPELINE_JOB_FIELDS, "pipeline job")
    settings = _settings(data)
    inputs = {k: normalize_input(k, v, base_path, store) for k, v in (data.get("inputs") or {}).items()}
    outputs, output_sources = _pipeline_outputs(data)
    check_steps(data)
    jobs: dict[str, dict] = {}
    step_bindings: dict[str, dict[tuple[str, str], bindings.Binding]] = {}
    for step, raw in data["jobs"].items():
        jobs[step], step_bindings[step] = _step(str(step), raw, data, settings, inputs, base_path, store)
    needs: dict[str, list[str]] = {}
    for step, bound in step_bindings.items():
        needs[step] = []
        for port, binding in bound.items():
            if binding.kind == "step_output":
                _check_step_output(f"Pipeline step '{step}' {port[0]} '{port[1]}'", binding, jobs)
                if binding.step not in needs[step]:
                    needs[step].append(binding.step)
            elif binding.kind == "output":
                if binding.name not in outputs:
                    raise ValidationError(
                        f"Pipeline step '{step}' {port[0]} '{port[1]}' is bound to {binding}, but the "
                        f"pipeline declares no output '{binding.name}' (outputs: {', '.join(outputs) or 'none'}). "
                        "Declare it under the pipeline's 'outputs:'."
                    )
                if binding.name in output_sources:
                    raise ValidationError(
                        f"Pipeline output '{binding.name}' is bound twice (to {output_sources[binding.name]} and "
                        f"step '{step}' {port[0]} '{port[1]}'); bind each pipeline output to one step output."
                    )
                output_sources[binding.name] = bindings.Binding("step_output", port[1], step)
    for key, source in output_sources.items():
        _check_step_output(f"Pipeline output '{key}'", source, jobs)
    unbound = [k for k in outputs if k not in output_sources]
    if unbound:
        raise ValidationError(
            f"Pipeline output(s) {', '.join(unbound)} are not bound to any step output. Bind each on the step "
            f"that produces it: outputs: {{<output>: ${{{{parent.outputs.{unbound[0]}}}}}}}."
        )
    StepGraph(needs).check_acyclic()
    return {
        **job_header(data, "pipeline", name),
        "settings": settings,
        "inputs": inputs,
        "outputs": {
            k: {**v, "step": output_sources[k].step, "output": output_sources[k].name} for k, v in outputs.items()
        },
        "jobs": {step: {"job": job, "needs": needs[step]} for step, job in jobs.items()},
        "base_path": str(base_path),
    }


def _check_step_output(where: str, binding: bindings.Binding, jobs: dict[str, dict]) -> None:
    if binding.step not in jobs:
        raise ValidationError(
            f"{where} refers to {binding}, but the pipeline has no step '{binding.step}' "
            f"(steps: {', '.join(jobs)}). Fix the step name."
        )
    if binding.name not in jobs[binding.step].get("outputs", {}):
        known = ", ".join(jobs[binding.step].get("outputs", {})) or "none"
        raise ValidationError(
            f"{where} refers to {binding}, but step '{binding.step}' has no output "
            f"'{binding.name}' (its outputs: {known}). Declare it under the step's "
            "'outputs:' or fix the name."
        )
