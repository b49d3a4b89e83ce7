"""Jobs: create (PUT), get, list and cancel, and the environment a job started through the front door gets.

The body of a PUT is the SDK's REST ``JobBase``; it becomes the SDK's own entity
(``Job._from_rest_object``) with the ARM ids the SDK resolved put back into what the local
backend takes (``azureml:name:version``, a compute's name, a code asset's folder), and goes to
``backend().jobs.create_or_update``, as ``connect()`` users call it. Answers are the local
backend's entity as a REST object, with what only the service knows filled in: status, ids,
system data, and the ``Tracking`` service pointing at the workspace's MLflow here.

A pipeline job's nodes name the components the SDK registered for its steps (``componentId``, :mod:`.components`):
each node gets that component back in place of the id before the local backend runs it, and the job's properties
keep which component each step ran, so that answers name it again (a pipeline the engine ran from a YAML file
answers with each step's anonymous component, registered on first sight, as the SDK needs one to read a step).

A job started here gets what Azure gives a job on its compute: a managed identity
(``MSI_ENDPOINT``/``MSI_SECRET``, and ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``) and the cloud
(``ARM_CLOUD_METADATA_URL``, the CA bundle, the blob proxy), so ``MLClient(DefaultAzureCredential(), ...)``
inside the job reaches this front door; the engine adds the run's own variables
(``AZUREML_RUN_ID``, ``AZUREML_ARM_*``). They travel in the job's process environment
(:func:`emulator.jobs.submission.inherited_environment`), never in its record, since ``MSI_SECRET`` is a
secret. ``MLFLOW_TRACKING_URI`` stays the engine's: the workspace's own MLflow file store, which is the
store this front door's MLflow serves, so a job's metrics land in the workspace's runs either way, and
still do when ``amlemu serve`` stops while the job runs (jobs are detached processes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, g, request

from emulator import arm, errors, kinds
from emulator.frontdoor import blobstore, codes, components, environment, resources, tokens
from emulator.jobs import lifecycle, submission
from emulator.jobs.views import job_services
from emulator.store.db import TERMINAL

blueprint = Blueprint("jobs", __name__)
blueprint.url_value_preprocessor(resources.take_scope)

JOBS = f"{resources.WORKSPACE}/jobs"
JOB_TYPE = "Microsoft.MachineLearningServices/workspaces/jobs"
#: how long a cancel waits for the job to end before its operation reports success anyway (CancelRequested)
CANCEL_WAIT_S = 60.0


# --- the job's environment ------------------------------------------------------------------------------------
def job_environment() -> dict[str, str]:
    """What Azure gives a job on its compute, pointing at this front door (see the module's docstring)."""
    front = resources.front()
    variables = environment.variables(front)
    variables.update(
        {
            # Azure ML compute's managed identity (azure-identity's AzureML protocol, a ``secret`` header)
            "MSI_ENDPOINT": front.identity_endpoint,
            "MSI_SECRET": tokens.identity_header(),
        }
    )
    # AZUREML_ARM_SUBSCRIPTION, _RESOURCEGROUP, _WORKSPACE_NAME, AZUREML_RUN_ID and the rest are the engine's
    # (the supervisor sets them over inherited ones): amlemu's subscription and resource group, which this front
    # door accepts as it accepts any
    return variables


# --- REST in: ARM ids back to what the local backend takes ------------------------------------------------------
def _reference(value: Any, field: str, *kinds: str) -> resources.ArmReference | None:
    """The reference ``value`` makes if the SDK resolved it to an ARM id (of ``kinds``, in the request's workspace:
    else a 400), None for anything else (a local path, a URL, ``azureml:name:version``), which the engine takes."""
    if not resources.is_arm_id(value):
        return None
    return resources.parse_reference(value, kinds, workspace=g.workspace, field=field)


def _asset_reference(value: Any, field: str, *kinds: str) -> Any:
    """An asset's ARM id as ``azureml:name:version`` (or ``@label``), the reference the engine resolves."""
    reference = _reference(value, field, *kinds)
    return value if reference is None else reference.short


def _compute_name(value: Any) -> Any:
    reference = _reference(value, "The job's compute", "computes")
    return value if reference is None else reference.name


def _code_folder(value: Any) -> Any:
    """A code asset's ARM id as the folder its upload landed in, which the engine snapshots."""
    if _reference(value, "The job's code", "codes") is None:
        return value
    return str(codes.code_folder_of(resources.backend().store, value))


def _code_id(store, folder: str) -> str | None:
    """The ARM id of the code asset whose upload is ``folder`` (a job's record keeps the folder only)."""
    folder_path = Path(folder).resolve()
    for record in store.list_assets(codes.KIND):
        try:
            if blobstore.local_path(store, record["code_uri"]).resolve() == folder_path:
                return f"{resources.workspace_path()}/codes/{record['name']}/versions/{record['version']}"
        except errors.ValidationError:
            continue
    return None


def _localize(job: Any) -> None:
    """Put back, in a job entity and its trial, what the SDK resolved to ARM ids."""
    from azure.ai.ml import Input

    for node in (job, getattr(job, "trial", None)):
        if node is None:
            continue
        if isinstance(getattr(node, "environment", None), str):
            node.environment = _asset_reference(node.environment, "The job's environment", "environments")
        if getattr(node, "code", None) is not None:
            node.code = _code_folder(node.code)
        if getattr(node, "compute", None):
            node.compute = _compute_name(node.compute)
        for key, value in (getattr(node, "inputs", None) or {}).items():
            if isinstance(value, Input) and isinstance(value.path, str):  # a data asset, or a model-typed input's
                value.path = _asset_reference(value.path, f"Input '{key}'", "data", "models")


#: the pipeline job property that keeps which registered component a step ran (beside the engine's
#: ``amlemu.steps.<step>.job_name`` and ``.status``): ``azureml:<name>:<version>``
STEP_COMPONENT = "amlemu.steps.{step}.component"


def _localize_steps(job: Any) -> None:
    """A pipeline job's steps with the components their ids name (registered here, :mod:`.components`) in place
    of the ids, and those components' references made local too. Which component each step names is kept in the
    job's properties (:data:`STEP_COMPONENT`), for answers to name it again. Steps of a kind the engine does not
    run are left as they are: the local backend refuses them (NotEmulated, naming the step)."""
    from azure.ai.ml.entities import Command, PipelineJob

    if not isinstance(job, PipelineJob):
        return
    settings = job.settings
    if settings is not None and settings.default_compute:
        settings.default_compute = _compute_name(settings.default_compute)
    store = resources.backend().store
    job.properties = dict(job.properties or {})
    for step, node in (job.jobs or {}).items():
        if not isinstance(node, Command):
            continue
        if isinstance(node.component, str):
            record = components.find(store, node.component, f"Pipeline step '{step}' component")
            node._component = components.entity_of(store, record)
            job.properties[STEP_COMPONENT.format(step=step)] = f"azureml:{record['name']}:{record['version']}"
        _localize(node.component)
        _localize(node)


def entity_of(body: dict[str, Any], name: str):
    """The SDK's job entity of a PUT body (the SDK's REST ``JobBase``), its references made local."""
    from azure.ai.ml._restclient.arm_ml_service.models import JobBase
    from azure.ai.ml.entities import Command, Job
    from azure.ai.ml.exceptions import JobParsingError

    if not isinstance(body.get("properties"), dict) or not body["properties"].get("jobType"):
        raise errors.ValidationError(f"The body of PUT jobs/{name} has no properties.jobType: send a JobBase.")
    rest = JobBase(body)
    rest.name = name
    try:
        job = Job._from_rest_object(rest)
    except JobParsingError as exc:
        raise errors.ValidationError(f"The body of PUT jobs/{name} is not a job amlemu can read: {exc}") from None
    if isinstance(job, Command):  # the SDK reads a command job back as a node; its job has plain inputs
        job = job._to_job()
    job.name = name
    _localize(job)
    _localize_steps(job)
    return job


# --- REST out -----------------------------------------------------------------------------------------------------
def rest_job(record: dict[str, Any]) -> dict[str, Any]:
    """A job record as the service answers it: the local backend's entity as a ``JobBase``, with status, ids,
    system data, the compute's id and the services filled in."""
    from backends import job_entities

    backend = resources.backend()
    store = backend.store
    entity = job_entities.record_to_job(store, record)
    _name_step_components(entity)
    body = resources.rest_dict(entity._to_rest_object())
    path = resources.workspace_path()
    props = body["properties"]
    props["status"] = record["status"]
    props["experimentName"] = record["experiment_name"]
    spec = record["spec"]
    if spec.get("compute"):
        props["computeId"] = f"{path}/computes/{spec['compute']}"
    if spec.get("code"):  # the engine keeps the folder; a client knows the code by its asset
        props["codeId"] = _code_id(store, spec["code"])
    view = kinds.view(store, record, tracking=False)
    for key, output in (props.get("outputs") or {}).items():
        shown = (view.get("outputs") or {}).get(key)
        if isinstance(output, dict) and shown and shown.get("path"):
            output["uri"] = shown["path"]  # an azureml:// URI, as the service shows it, not the local folder
    # the engine's services (Studio: the job's folder, where Azure links the studio), with Tracking here
    services = {
        key: {"endpoint": value["endpoint"], "jobServiceType": key}
        for key, value in job_services(store, record["name"]).items()
    }
    services["Tracking"]["endpoint"] = f"{resources.front().http_url}/mlflow/v1.0{path}"
    props["services"] = {**(props.get("services") or {}), **services}
    body.update(
        id=f"{path}/jobs/{record['name']}",
        name=record["name"],
        type=JOB_TYPE,
        systemData=arm.system_data(record["created_at"], spec.get("created_by"), record.get("ended_at")),
    )
    return body


def _name_step_components(entity: Any) -> None:
    """A pipeline's steps (which the engine gives back inline) named by component id, as the service answers them
    (``componentId``, which the SDK needs to read a step): the component a step was submitted with, else (a step
    written inline, ``amlemu job create``) its anonymous component, registered on first sight."""
    from azure.ai.ml.entities import PipelineJob

    if not isinstance(entity, PipelineJob):
        return
    store = resources.backend().store
    for step, node in (entity.jobs or {}).items():
        reference = (entity.properties or {}).get(STEP_COMPONENT.format(step=step))
        if reference:
            found = resources.parse_reference(reference, ("components",), field=f"Pipeline step '{step}'")
            node._component = components.component_id(found.name, found.version)
        else:
            node._component = components.anonymous_id(store, node.component)


def _jobs():
    return resources.backend().jobs


# --- routes -----------------------------------------------------------------------------------------------------
@blueprint.put(f"{JOBS}/<name>")
def create_or_update(name: str):
    job = entity_of(resources.body(), name)
    store = resources.backend().store
    try:
        store.get_job(name)
    except errors.ResourceNotFound:
        pass
    else:
        raise errors.ResourceExists(
            f"Job '{name}' already exists in workspace '{g.workspace}': amlemu does not update a submitted job. "
            "Submit it under a new name (or without a name, for a generated one)."
        )
    with submission.inherited_environment(job_environment()):
        created = _jobs().create_or_update(job)
    return resources.answer(rest_job(lifecycle.get(store, created.name)), status=201)


@blueprint.get(f"{JOBS}/<name>")
def get(name: str):
    return resources.answer(rest_job(lifecycle.get(resources.backend().store, name)))


def _tag_filter(tag: str | None):
    """ARM's ``tag`` filter: ``key`` (the tag is set) or ``key=value``."""
    if not tag:
        return lambda tags: True
    key, has_value, value = tag.partition("=")
    return lambda tags: key in tags and (not has_value or str(tags[key]) == value)


@blueprint.get(JOBS)
def list_jobs():
    view_type = (request.args.get("listViewType") or "ActiveOnly").lower()
    if view_type == "archivedonly":  # amlemu does not archive jobs
        return resources.answer({"value": []})
    job_type = (request.args.get("jobType") or "").lower()
    tagged = _tag_filter(request.args.get("tag"))
    records = [
        r
        for r in lifecycle.list_jobs(resources.backend().store)
        if (not job_type or r["type"].lower() == job_type) and tagged(r["spec"].get("tags") or {})
    ]
    return resources.answer({"value": [rest_job(r) for r in records]})


@blueprint.post(f"{JOBS}/<name>/cancel")
def cancel(name: str):
    store = resources.backend().store
    lifecycle.get(store, name)  # a missing job is a 404 now, not a failed operation

    def work() -> None:
        if lifecycle.cancel(store, name)["status"] not in TERMINAL:
            lifecycle.wait(store, name, CANCEL_WAIT_S)

    op_id = resources.start_operation(work)
    location = f"{resources.front().https_url}{resources.workspace_path()}/jobs/{name}"
    return resources.answer({}, status=202, headers=resources.lro_headers(op_id, location))
