"""amlemu's pytest plugin: Azure ML fixtures for a project's own tests, on the local emulator or on Azure.

Registered under the ``pytest11`` entry point, so installing amlemu is all the set-up: ``pytest`` runs the
tests on the local backend, ``pytest --aml-backend azure`` runs the same tests against the workspace of a
``config.json``. The plugin loads in every pytest run of the environment, so importing it costs nothing
(pytest and the standard library only; the engine and azure-ai-ml load when a test first asks for an
``aml_*`` fixture) and a test that uses none of its fixtures or markers sees no change at all.

Isolation: locally, each pytest process (each xdist worker) gets one ``AMLEMU_HOME`` under its base
temporary folder and each test a fresh workspace in it, so workers, tests and ports never meet (endpoint
ports are chosen free by the system). On Azure, every name a fixture creates carries the run's prefix.
Teardown deletes what the fixtures created, also after a failure or Ctrl-C (pytest tears fixtures down
when interrupted; on Azure the plugin turns SIGTERM into the same interruption), and a local test then
fails if anything of its workspace still runs (the leak check, :mod:`emulator.testing.leaks`).
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from typing import Any

import pytest

#: the fixtures a test opts in with; the plugin touches nothing of a test that asks for none of them
FIXTURES = frozenset(
    {"aml_client", "aml_session_client", "aml_run_job", "aml_register_model", "aml_deploy", "aml_compute", "aml_faults"}
)
MARKERS = (
    "aml_backend(name): run this test only on the named amlemu backend ('local' or 'azure'); it is skipped, "
    "with the reason shown, on the other",
    "aml_local_only: run this test only on amlemu's local backend (skipped with --aml-backend azure)",
    "aml_azure_only: run this test only against Azure ML (--aml-backend azure); skipped on the local backend",
)
#: how long teardown lets the processes of deleted endpoints finish exiting before it calls them leaked
LEAK_GRACE_S = 5.0

_reports = pytest.StashKey[dict]()
_kept = pytest.StashKey[str]()
_session_failed = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("amlemu", "Azure ML tests (amlemu)")
    group.addoption(
        "--aml-backend",
        default=None,
        help="where the aml_* fixtures act: 'local' (amlemu's emulator, offline) or 'azure' (the workspace of "
        "--aml-workspace-config). Default: AMLEMU_BACKEND, then local.",
    )
    group.addoption(
        "--aml-workspace-config",
        default=None,
        metavar="PATH",
        help="the Azure ML workspace's config.json for --aml-backend azure (default: searched from the current "
        "folder upwards, as MLClient.from_config does).",
    )
    group.addoption(
        "--aml-keep",
        action="store_true",
        default=False,
        help="after a failing test, keep its workspace, endpoints and clusters (no teardown, no leak check) and "
        "print where they are.",
    )


def backend_of(config: pytest.Config) -> str:
    """The backend of this run: ``--aml-backend``, then ``AMLEMU_BACKEND``, then ``local``."""
    return (config.getoption("aml_backend") or os.environ.get("AMLEMU_BACKEND") or "local").lower()


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.getoption("aml_backend") or config.getoption("aml_workspace_config"):
        return f"amlemu: aml_* fixtures on the {backend_of(config)} backend"
    return None


def _pinned(item: pytest.Item) -> tuple[str, str] | None:
    """``(backend, marker)`` the test is pinned to, or None."""
    pins = []
    for mark in item.iter_markers("aml_backend"):
        name = mark.args[0] if mark.args else mark.kwargs.get("name")
        if not isinstance(name, str) or not name:
            raise pytest.UsageError(
                f"{item.nodeid}: aml_backend needs a backend name, e.g. @pytest.mark.aml_backend('local')"
            )
        pins.append((name.lower(), f"aml_backend({name!r})"))
    if item.get_closest_marker("aml_local_only"):
        pins.append(("local", "aml_local_only"))
    if item.get_closest_marker("aml_azure_only"):
        pins.append(("azure", "aml_azure_only"))
    if len({backend for backend, _ in pins}) > 1:
        raise pytest.UsageError(
            f"{item.nodeid} is pinned to more than one backend ({', '.join(m for _, m in pins)}): keep one marker."
        )
    return pins[0] if pins else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = None
    for item in items:
        pin = _pinned(item)
        if pin is None:
            continue
        backend = backend or backend_of(config)
        if pin[0] != backend:
            reason = f"{pin[1]}: runs on the {pin[0]} backend only; this run uses --aml-backend {backend}"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    used = FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if used:
        item.stash.setdefault(_reports, {})[report.when] = report
        if report.failed and "aml_session_client" in used:
            item.config.stash[_session_failed] = True
        if report.when == "teardown" and _kept in item.stash:
            report.user_properties.append(("amlemu-kept", item.stash[_kept]))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    kept = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        for key, value in getattr(report, "user_properties", ())
        if key == "amlemu-kept"
    ]
    if kept:
        terminalreporter.write_sep("=", "amlemu: kept after failing tests (--aml-keep)")
        for block in kept:
            terminalreporter.write_line(block)


def _failed(item: pytest.Item) -> bool:
    return any(r.failed for r in item.stash.get(_reports, {}).values())


class _Run:
    """This pytest process's amlemu state: the backend, the name prefix, the local home, the Azure client."""

    def __init__(self, config: pytest.Config, tmp_path_factory: pytest.TempPathFactory):
        from emulator.testing.names import RunNames  # the engine: only when a test uses the fixtures

        self.config, self.backend, self.names = config, backend_of(config), RunNames()
        self.keep = bool(config.getoption("aml_keep"))
        self.home = tmp_path_factory.mktemp("amlemu-home") if self.backend == "local" else None
        self._azure: Any = None
        self._sigterm: Any = None

    def client(self, workspace: str | None = None) -> Any:
        """A client of this run's backend: locally a (new) workspace of the run's home, on Azure the one client."""
        import backends

        if self.backend == "local":
            with pytest.MonkeyPatch.context() as env:  # the store is bound to the home when it opens
                env.setenv("AMLEMU_HOME", str(self.home))
                return backends.connect("local", workspace=workspace)
        if self._azure is None:
            from emulator.errors import EmulatorError

            try:
                self._azure = backends.connect(self.backend, path=self.config.getoption("aml_workspace_config"))
            except EmulatorError as exc:
                pytest.fail(f"amlemu ({self.backend} backend): {exc}", pytrace=False)
            self._interrupt_on_sigterm()
        return self._azure

    def _interrupt_on_sigterm(self) -> None:
        """A cancelled CI job sends SIGTERM: make it an interruption, so teardown still deletes what costs money."""
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self._sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)

    def close(self) -> None:
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def _aml_run(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory):
    """This pytest process's amlemu run: backend, name prefix, home (an internal fixture of the aml_* ones)."""
    run = _Run(pytestconfig, tmp_path_factory)
    yield run
    run.close()


@pytest.fixture(autouse=True)
def _aml_environment(request: pytest.FixtureRequest):
    """Point the amlemu variables (``AMLEMU_HOME``, ``AMLEMU_BACKEND``) at the run, for a test using aml_* fixtures
    only, so that code under test calling ``amlemu.connect()`` or the ``amlemu`` CLI meets the same workspace."""
    if not FIXTURES.intersection(request.fixturenames):
        yield
        return
    run = request.getfixturevalue("_aml_run")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AMLEMU_BACKEND", run.backend)
        if run.home is not None:
            env.setenv("AMLEMU_HOME", str(run.home))
            env.delenv("AMLEMU_WORKSPACE", raising=False)
        yield


def _scoped(run: _Run, request: pytest.FixtureRequest, client: Any, tmp: Any):
    from emulator.testing.workspace import ScopedWorkspace

    return ScopedWorkspace(
        client,
        run.backend,
        run.names,
        tmp,
        search_dirs=[request.path.parent, request.config.rootpath],
        home=run.home,
    )


@pytest.fixture
def _aml_workspace(_aml_run: _Run, request: pytest.FixtureRequest, tmp_path, monkeypatch):
    """This test's workspace and its teardown: deletions, then the leak check (an internal fixture)."""
    from emulator.testing.names import RunNames

    workspace = RunNames.workspace_for(request.node.name) if _aml_run.backend == "local" else None
    ws = _scoped(_aml_run, request, _aml_run.client(workspace), tmp_path / "aml")
    if workspace:
        monkeypatch.setenv("AMLEMU_WORKSPACE", workspace)
    yield ws
    _teardown(ws, request.node, _aml_run.keep and _failed(request.node))


def _teardown(ws: Any, item: pytest.Item, keep: bool) -> None:
    problems, kept = ws.teardown(keep)
    if keep:
        item.stash[_kept] = "\n".join([f"{item.nodeid}: {ws.where()}", *(f"  {line}" for line in kept)])
        return
    deadline = time.monotonic() + LEAK_GRACE_S
    while ws.left_running() and time.monotonic() < deadline:  # replicas of a deleted endpoint still exiting
        time.sleep(0.1)
    left = ws.stop_everything()
    if left:
        problems.append(
            "left running after teardown (now stopped):\n"
            + "\n".join(f"    {thing}" for thing in left)
            + "\n  Fix: delete what the test created outside the aml_* fixtures (for an endpoint, "
            "ml_client.online_endpoints.begin_delete(name=...).result(); for a job, wait for it or cancel it), "
            "or create it with aml_deploy / aml_compute / aml_run_job, which clean up after themselves."
        )
    if problems:
        pytest.fail(f"amlemu teardown of {item.nodeid} ({ws.where()}):\n  " + "\n  ".join(problems), pytrace=False)


def _surface(method):
    """A fixture's callable whose failures show as one message at the test's line (the harness frames hidden)."""
    from emulator.testing.workspace import AmlTestFailure

    @functools.wraps(method)
    def call(*args, **kwargs):
        __tracebackhide__ = True
        try:
            return method(*args, **kwargs)
        except AmlTestFailure as exc:
            raise AmlTestFailure(str(exc)) from None

    return call


@pytest.fixture
def aml_client(_aml_workspace):
    """An ``MLClient``-shaped client on a fresh, isolated workspace (function scope).

    Locally: a new workspace of amlemu's local backend, under a state folder of this pytest process (also
    ``AMLEMU_HOME``/``AMLEMU_WORKSPACE`` during the test, so ``amlemu.connect()`` in code under test meets it).
    With ``--aml-backend azure``: ``MLClient`` on the workspace of ``--aml-workspace-config`` (``config.json``).
    At teardown, a local test fails if any process or container of its workspace still runs (the list is shown,
    and they are stopped).
    """
    return _aml_workspace.client


@pytest.fixture(scope="session")
def aml_session_client(_aml_run: _Run):
    """An ``MLClient``-shaped client on one workspace shared by every test of the session (per xdist worker): for
    speed, when tests may see each other's assets. Whatever still runs in it is stopped at the end of the session.
    With ``--aml-backend azure``: the same ``MLClient`` as ``aml_client``."""
    from emulator.testing.names import RunNames

    workspace = RunNames.workspace_for("session") if _aml_run.backend == "local" else None
    client = _aml_run.client(workspace)
    yield client
    if workspace and not (_aml_run.keep and _aml_run.config.stash.get(_session_failed, False)):
        from emulator.testing import leaks

        leaks.stop_workspace(_aml_run.home, workspace)


@pytest.fixture
def aml_run_job(_aml_workspace):
    """Run a job and wait for it: ``aml_run_job(path_or_job, set={"inputs.C": 0.5}, timeout=3600, stream=False,
    **create_or_update_kwargs)``.

    ``path_or_job`` is a job YAML (loaded with azure-ai-ml's ``load_job``, ``set`` as its ``params_override``;
    relative paths are looked for in the current folder, the test's folder and the rootdir) or an SDK job entity
    (``set`` assigns its dotted fields). Returns the completed job entity with ``.metrics`` and ``.params`` (from
    MLflow on the workspace's tracking URI) and ``.outputs_dir`` (its outputs and logs downloaded:
    ``artifacts/outputs/...``, ``artifacts/user_logs/std_log.txt``, ``named-outputs/<name>``). A job that does not
    complete fails the test with its status and the tail of its log; one still running at teardown is canceled.
    """
    from emulator.testing.jobs import run_job

    return _surface(functools.partial(run_job, _aml_workspace))


@pytest.fixture
def aml_register_model(_aml_workspace):
    """Register a model: ``aml_register_model(path, name=None, type="custom_model", **model_fields)`` returns the
    SDK ``Model``. ``path`` is a local file or folder (e.g. ``job.outputs_dir / "artifacts/outputs"``) or an
    ``azureml://``/``runs:/`` URI; the name defaults to the folder's (on Azure, with the run's prefix)."""
    return _surface(_aml_workspace.register_model)


@pytest.fixture
def aml_deploy(_aml_workspace):
    """Deploy a model behind a new managed online endpoint: ``aml_deploy(model=..., code=None,
    scoring_script=None, environment=None, instance_count=1, instance_type="Standard_DS3_v2", endpoint_name=None,
    deployment_name="blue", auth_mode="key", **deployment_fields)``.

    ``model``: a local path (registered first), an ``azureml:`` reference or a ``Model``; ``environment``: a conda
    file, a Docker build folder, a curated or ``azureml:`` name, or an ``Environment``; leave out ``code`` and
    ``environment`` for a model the built-in scorer serves (ONNX). The deployment gets 100 % of the traffic.
    Returns an object with ``scoring_uri``, ``key``, ``invoke(payload) -> (status, body)`` (real HTTP with the key)
    and ``logs()``. The endpoint is deleted at teardown, even if the test fails (kept with ``--aml-keep``); a
    deployment that does not start fails the test with its log and is deleted at once.
    """
    from emulator.testing.deploy import deploy

    return _surface(functools.partial(deploy, _aml_workspace))


@pytest.fixture
def aml_compute(_aml_workspace):
    """Create a compute cluster: ``aml_compute(name=None, min_instances=0, max_instances=2, size="Standard_DS3_v2",
    idle_time_before_scale_down=120, **fields)`` returns the SDK ``AmlCompute`` (use ``.name`` in a job's
    ``compute``: on Azure it carries the run's prefix). Deleted at teardown."""
    return _surface(_aml_workspace.compute)


@pytest.fixture
def aml_faults(_aml_run: _Run, request: pytest.FixtureRequest):
    """Make Azure ML misbehave on purpose in this test's workspace (local backend only), to test how your client
    and pipelines cope. Each fault answers as Azure does and is cleared at teardown, even if the test fails:

    - ``aml_faults.endpoint(name, status, count=1, deployment=None)``: the next ``count`` requests to the endpoint
      answer ``429``, ``503`` or ``"timeout"`` (408 after the deployment's ``request_timeout_ms``);
    - ``aml_faults.crash_replica(endpoint, deployment=None)``: a replica dies at once; the host restarts it;
    - ``aml_faults.job_start(error_code, message, count=1)``: the next jobs fail at start with that Azure error;
    - ``aml_faults.compute_quota(name=None, vcpu_quota=0, count=1)``: creating the compute is refused with
      Azure's 400 ``ClusterMinNodesExceedCoreQuota``;
    - ``aml_faults.node_lost(cluster, after_seconds=0, count=1)``: the next job on the cluster loses its node
      that long after it starts, and fails naming it.

    ``name``/``endpoint``/``cluster`` take a name or what ``aml_deploy``/``aml_compute`` returned. With
    ``--aml-backend azure`` the fixture fails the test: mark such tests ``aml_local_only``.
    """
    from emulator.testing.faults import LOCAL_ONLY, AmlFaults

    if _aml_run.backend != "local":  # before connecting to Azure: there is nothing to inject into
        pytest.fail(f"aml_faults ({_aml_run.backend} backend): {LOCAL_ONLY}", pytrace=False)
    faults = AmlFaults(request.getfixturevalue("_aml_workspace"), request.node.nodeid)
    yield faults
    faults.clear()
