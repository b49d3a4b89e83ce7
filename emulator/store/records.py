"""The shapes of the records the workspace store keeps: jobs, job specs, endpoints, deployments, computes.

Records are JSON-shaped dicts (SQLite rows, JSON bodies) and views are built from them, so they
are typed as ``TypedDict``s: a type checker knows each field's name and type, and nothing changes
at run time (a ``TypedDict`` is a plain ``dict``). A field is named here once; the code that
writes a record and the code that reads it refer to the same declaration.

Sections a user writes freely (``tags``, ``environment_variables``, a search space, a pipeline
step as written) stay ``dict[str, Any]``.

Modules import these types under ``if TYPE_CHECKING:``: building the classes costs about 2 ms
(each field's annotation is compiled), which a job's supervisor should not pay at start-up.
"""

from __future__ import annotations

from typing import Any, Generic, NotRequired, Required, TypedDict, TypeVar


# -- job specs (the ``spec`` column of a job, as each kind normalizes it) ------------------------------
class JobSpecHeader(TypedDict):
    """The fields every job kind's spec shares (:func:`emulator.jobs.spec.job_header`)."""

    type: str
    # name, display_name and experiment_name are None in a spec as written until
    # submission.name_job fills them in, which every kind does before it records the job
    name: str
    display_name: str
    description: str | None
    tags: dict[str, str]
    properties: dict[str, str]
    experiment_name: str
    compute: str | None  # a compute name in the workspace (``azureml:`` dropped), None: this machine
    created_by: NotRequired[str]  # the submitting user, set by submission.name_job
    orchestrator: NotRequired[str]  # a parent job's module (``python -m``), restarted when it is lost
    base_path: NotRequired[str]  # a parent job's: the folder its children resolve relative paths from


class JobInput(TypedDict, total=False):
    """A normalized job input: a literal (``type: literal``, ``value``) or data (``type``, ``path``, ``mode``)."""

    type: Required[str]
    value: Any
    path: str  # absolute, local
    mode: str
    reference: str  # a data asset (azureml:<name>:<version>) or datastore path, as the job's view shows it


class JobOutput(TypedDict):
    type: str
    mode: str
    path: NotRequired[str]  # a datastore path (azureml://datastores/<ds>/paths/<p>): where it is written
    name: NotRequired[str]  # the data asset it is registered as when the job completes
    version: NotRequired[str]  # that data asset's version (the next one when absent)


class EnvironmentResolved(TypedDict):
    """What a job or deployment's environment runs in (:func:`emulator.environments.registry.resolve`)."""

    reference: str  # azureml:<name>:<version>, a curated name, or "inline"
    curated: bool
    requirements: list[str] | None  # pip requirements; None: amlemu's own interpreter
    python: NotRequired[str | None]  # the Python minor version its conda file asks for ("3.9"); None: any
    image: str | None  # the environment's image (not pulled offline)
    build: dict[str, Any] | None  # the environment's Docker build context
    note: str  # how it runs locally, for `environment show` and logs


class CommandJobSpec(JobSpecHeader):
    """A command job's spec (:func:`emulator.jobs.spec.normalize_command_job`, then ``submit_command``)."""

    command: str
    code: str | None  # the code folder as given (absolute); the job runs its snapshot
    environment: str | dict[str, Any] | None  # as written: a reference or an inline environment
    environment_variables: dict[str, str]
    inputs: dict[str, JobInput]
    outputs: dict[str, JobOutput]
    resources: dict[str, Any]  # as written, with instance_count filled in
    distribution: dict[str, Any] | None
    limits: dict[str, Any]  # {"timeout": seconds} or {}
    environment_resolved: NotRequired[EnvironmentResolved]  # set at submit
    runtime: NotRequired[str]  # process, docker or auto; set at submit
    slot_gated: NotRequired[bool]  # a sweep's trial: waits for its slot before its command starts


class SweepTrial(TypedDict):
    command: str
    code: str | None  # the sweep's snapshot folder once submitted
    environment: str | dict[str, Any] | None
    environment_variables: dict[str, str]
    resources: dict[str, Any]
    distribution: dict[str, Any] | None
    source_code: NotRequired[str]  # the code folder as given, before the snapshot


class SweepObjective(TypedDict):
    goal: str  # maximize or minimize
    primary_metric: str


class SweepLimits(TypedDict):
    max_total_trials: int
    max_concurrent_trials: int | None
    timeout: int
    trial_timeout: int | None


class SweepJobSpec(JobSpecHeader):
    """A sweep job's spec (:func:`emulator.sweeps.spec.normalize_sweep_job`, then ``submit_sweep``)."""

    trial: SweepTrial
    inputs: dict[str, JobInput]
    outputs: dict[str, JobOutput]
    search_space: dict[str, Any]
    objective: SweepObjective
    sampling_algorithm: dict[str, Any]  # {"type": random|grid|bayesian, ...its settings}
    early_termination: dict[str, Any] | None
    limits: SweepLimits


class PipelineSettings(TypedDict):
    default_compute: str | None
    default_datastore: str | None
    continue_on_step_failure: bool
    force_rerun: bool | None


class PipelineStep(TypedDict):
    job: dict[str, Any]  # the step's command job as written, its bindings kept
    needs: list[str]  # the steps whose outputs it reads


class PipelineJobSpec(JobSpecHeader):
    """A pipeline job's spec (:func:`emulator.pipelines.spec.normalize_pipeline_job`, then ``submit_pipeline``)."""

    settings: PipelineSettings
    inputs: dict[str, Any]
    outputs: dict[str, dict[str, Any]]  # each with the ``step`` and ``output`` it is bound to
    jobs: dict[str, PipelineStep]
    runtime: NotRequired[str]  # set at submit


class AutoMLJobSpec(JobSpecHeader):
    """An AutoML job's spec (:func:`emulator.automl.spec.normalize_automl_job`, then ``submit_automl``)."""

    task: str
    primary_metric: str
    goal: str  # maximize or minimize (from the metric)
    target_column_name: str
    weight_column_name: str | None
    positive_label: Any
    inputs: dict[str, JobInput]
    validation: dict[str, Any]  # {"type": validation_data|cv|holdout|auto, ...}
    limits: dict[str, Any]
    training: dict[str, Any]
    featurization: dict[str, Any]
    outputs: dict[str, JobOutput]


# -- jobs (the ``jobs`` table) ------------------------------------------------------------------------
#: a job kind's spec type (CommandJobSpec, SweepJobSpec, ...)
SpecT = TypeVar("SpecT", bound=JobSpecHeader)


class NewJobRecord(TypedDict, Generic[SpecT]):
    """The columns a job is inserted with (:meth:`emulator.store.db.WorkspaceStore.insert_job`)."""

    name: str
    type: str  # the job kind: command, sweep, pipeline, automl
    experiment_name: str
    parent_job_name: str | None
    status: str
    spec: SpecT  # JSON in the table; the kind's spec (CommandJobSpec, ...) when read
    created_at: float


class JobRecord(NewJobRecord[SpecT], Generic[SpecT]):
    """A row of the ``jobs`` table as :meth:`~emulator.store.db.WorkspaceStore.get_job` returns it.

    ``JobRecord`` alone leaves the spec untyped (the store does not know the kind);
    ``JobRecord[CommandJobSpec]`` is a command job's.
    """

    started_at: float | None
    ended_at: float | None
    pid: int | None  # the supervisor's or orchestrator's process
    pid_start: str | None  # its start time: a reused pid is not it
    run_pid: int | None  # the job's own (first) process, under its supervisor
    exit_code: int | None
    error: str | None


# -- assets (the ``assets`` table: a JSON body, with these columns added) ------------------------------
class AssetRow(TypedDict):
    name: str
    version: str
    created_at: float
    updated_at: float


class EndpointCredentials(TypedDict):
    primary: str
    secondary: str
    token_secret: str  # signs aml_token tokens
    admin: str  # the host's control routes


class EndpointRecord(AssetRow):
    """An online endpoint (:func:`emulator.endpoints.records.create_or_update_endpoint`)."""

    kind: str  # managed or kubernetes
    compute: str | None  # the attached Kubernetes compute, for a kubernetes endpoint
    auth_mode: str  # key or aml_token
    traffic: dict[str, int]  # deployment -> percent
    mirror_traffic: dict[str, int]
    public_network_access: str  # enabled or disabled
    description: str | None
    tags: dict[str, str]
    properties: dict[str, str]
    port: int  # on 127.0.0.1, kept for the endpoint's life
    credentials: EndpointCredentials
    provisioning_state: str
    local: NotRequired[bool]  # created with azure-ai-ml's local=True (see emulator.endpoints.local_mode)
    scoring_uri: NotRequired[str]  # added by service.get_endpoint, never stored
    openapi_uri: NotRequired[str]  # likewise
    workspace_secret: NotRequired[bytes]  # added by the endpoint's host, never stored


class ModelRef(TypedDict):
    name: str
    version: str


class DeploymentRecord(AssetRow):
    """An online deployment (:func:`emulator.endpoints.records.create_or_update_deployment`; its host
    records the outcome with ``set_deployment_state``)."""

    endpoint_name: str
    deployment_name: str
    type: str  # managed or kubernetes
    model: ModelRef | None
    scoring_script: str | None
    environment: str | dict[str, Any] | None  # as written
    environment_resolved: EnvironmentResolved | None  # None: the built-in ONNX scorer
    environment_variables: dict[str, str]
    instance_count: int
    instance_type: str | None
    request_settings: dict[str, int]
    liveness_probe: dict[str, int]
    readiness_probe: dict[str, int]
    scale_settings: dict[str, Any]  # {"type": default} or target_utilization and its settings
    description: str | None
    tags: dict[str, str]
    runtime: str
    generation: int  # bumped by every update; the host records the outcome of the newest only
    provisioning_state: str  # Creating, Updating, Succeeded, Failed
    error: str | None
    code: NotRequired[str]  # the code snapshot folder of this generation
    code_hash: NotRequired[str]  # of the code folder: unchanged files keep the snapshot


class ComputeRecord(AssetRow, total=False):
    """A compute: a cluster (``amlcompute``), an instance (``computeinstance``) or ``kubernetes``."""

    type: Required[str]
    description: Required[str | None]
    provisioning_state: Required[str]
    size: str  # a VM size (clusters, instances)
    location: str
    tags: dict[str, str]
    created_on: float
    tier: str  # clusters: dedicated or low_priority
    min_instances: int
    max_instances: int
    idle_time_before_scale_down: int  # seconds
    ssh_public_access_enabled: bool
    state: str  # instances: Running, Stopped, ...
    state_history: list[dict[str, Any]]
    last_operation: dict[str, Any]
    home: str  # instances: the persistent home folder
    concurrent_jobs: int  # instances: how many jobs run at once
    namespace: str  # kubernetes
    properties: dict[str, str]  # kubernetes
