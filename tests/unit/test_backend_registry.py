"""Which backend ``connect()`` returns, and the local backend's not-emulated groups."""

from __future__ import annotations

from pathlib import Path

import pytest

import backends
from backends import registry
from backends.base import Backend
from emulator import config
from emulator.errors import NotEmulated, ValidationError


class FakeBackend:
    """Stands in for the Azure backend: records what connect() passed."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def env(amlemu_home, tmp_path, monkeypatch):
    """A clean cwd and home; the local backend's MLflow setting restored afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # LocalBackend sets it; monkeypatch undoes it
    return monkeypatch


@pytest.fixture
def fake_azure(env):
    env.setattr(registry, "BUILTIN", {"local": "backends.local:LocalBackend", "azure": f"{__name__}:FakeBackend"})


def write_cwd_config(text: str) -> None:
    (Path.cwd() / ".amlemu.yml").write_text(text)


def test_default_is_local(env):
    from backends.local import LocalBackend

    backend = backends.connect()
    assert type(backend) is LocalBackend
    assert isinstance(backend, Backend)


def test_env_var_honoured(env, fake_azure):
    env.setenv("AMLEMU_BACKEND", "local")
    write_cwd_config("backend: azure\n")
    assert backends.connect().name == "local"


def test_cwd_config_file_sets_backend(env):
    write_cwd_config("backend: azure\n")
    assert config.setting("backend") == "azure"


def test_setting_resolution_order(env, amlemu_home):
    assert config.setting("backend", "local") == "local"
    amlemu_home.mkdir(parents=True, exist_ok=True)
    (amlemu_home / "config.yml").write_text("backend: from-home\n")
    assert config.setting("backend", "local") == "from-home"
    write_cwd_config("backend: from-cwd\n")
    assert config.setting("backend", "local") == "from-cwd"
    env.setenv("AMLEMU_BACKEND", "from-env")
    assert config.setting("backend", "local") == "from-env"


def test_connect_resolution_order(env, fake_azure):
    write_cwd_config("backend: azure\n")
    backend = backends.connect(credential="cred", path="config.json")
    assert isinstance(backend, FakeBackend)
    assert backend.kwargs == {"credential": "cred", "path": "config.json"}
    assert backends.connect("local").name == "local"  # the argument beats the file
    env.setenv("AMLEMU_BACKEND", "local")
    assert isinstance(backends.connect("azure"), FakeBackend)  # ... and the environment
    write_cwd_config("backend: local\n")
    env.setenv("AMLEMU_BACKEND", "azure")
    assert isinstance(backends.connect(), FakeBackend)  # the environment beats the file


def test_unknown_backend_lists_known_ones(env):
    with pytest.raises(ValidationError) as info:
        backends.connect("nope")
    assert "'nope'" in str(info.value)
    assert "azure, local" in str(info.value)


def test_unknown_backend_from_env_rejected(env):
    env.setenv("AMLEMU_BACKEND", "nope")
    with pytest.raises(ValidationError, match="Known backends"):
        backends.connect()


def test_local_compute_type_not_emulated(env):
    from azure.ai.ml.entities import VirtualMachineCompute

    with pytest.raises(NotEmulated, match="not emulated yet") as info:
        backends.connect().compute.begin_create_or_update(VirtualMachineCompute(name="vm", resource_id="/x"))
    assert "compute of type 'virtualmachine'" in str(info.value)


def test_local_compute_missing_is_sdk_not_found(env):
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError, match="Compute 'cpu-cluster' not found"):
        backends.connect().compute.begin_start("cpu-cluster")


def test_local_online_endpoint_missing_is_sdk_not_found(env):
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError, match="Online endpoint 'nope' not found"):
        backends.connect().online_endpoints.get("nope")


def test_every_mlclient_operation_group_exists_and_the_unemulated_ones_say_so(env):
    from azure.ai.ml import MLClient

    ml_client = backends.connect("local")
    groups = [
        name
        for name, value in vars(MLClient).items()
        if isinstance(value, property) and name not in ("subscription_id", "resource_group_name", "workspace_name")
    ]
    assert "data" in groups and "schedules" in groups
    for group in groups:
        assert getattr(ml_client, group) is not None, group  # never an AttributeError
    for group, call in (
        ("connections", lambda ops: ops.list()),
        ("registries", lambda ops: ops.get("r")),
        ("indexes", lambda ops: ops.get("i")),
        ("batch_endpoints", lambda ops: ops.list()),
        ("schedules", lambda ops: ops.begin_create_or_update(object())),
    ):
        with pytest.raises(NotEmulated) as info:
            call(getattr(ml_client, group))
        assert f"ml_client.{group}." in info.value.message and "not emulated yet" in info.value.message


def test_local_backend_builds_without_the_sdk(env):
    import subprocess
    import sys

    code = (
        "import sys, backends; b = backends.connect('local'); b.verbs; "
        "print(sorted(m for m in sys.modules if m.startswith('azure')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_cli_verb_has_a_method_on_every_verbs_class():
    from backends.local_verbs import LocalVerbs
    from backends.sdk_verbs import SdkVerbs
    from emulator.cli.main import build_parser

    methods = set()
    groups = next(a for a in build_parser()._actions if a.dest == "group")
    for group in groups.choices.values():
        verbs = next((a for a in group._actions if a.dest == "verb"), None)
        if verbs is None:  # serve, env, studio: commands of this machine, not az ml verbs on a backend
            assert group.get_default("run") is not None, group.prog
            continue
        methods |= {p.get_default("verb_method") for p in verbs.choices.values()}
    assert "online_endpoint_get_credentials" in methods and "system_prune" in methods
    for cls in (LocalVerbs, SdkVerbs):
        assert not cls.__abstractmethods__, cls
        assert all(callable(getattr(cls, m, None)) for m in methods), cls


def test_an_sdk_method_the_local_group_lacks_is_not_emulated(amlemu_home):
    from backends import connect
    from emulator.errors import NotEmulated

    ml = connect("local")
    with pytest.raises(NotEmulated, match=r"ml_client\.models\.archive"):
        ml.models.archive("iris", version="1")
    with pytest.raises(NotEmulated, match=r"ml_client\.jobs\.archive"):
        ml.jobs.archive("some-job")
    with pytest.raises(AttributeError):  # not a method of the SDK's group either
        ml.models.no_such_method  # noqa: B018
