"""The job-kind registry: every kind resolves, an unknown type is refused with the known ones, and
a new kind is one registry line plus its own module."""

from __future__ import annotations

import importlib
import sys
import time
import types

import pytest

from emulator import kinds
from emulator.errors import NotEmulated
from emulator.jobs import lifecycle, submission
from emulator.jobs.kind import JobKind


@pytest.mark.parametrize("job_type", kinds.known())
def test_every_registered_kind_resolves(job_type):
    kind = kinds.kind(job_type)
    assert kind.type == job_type and callable(kind.submit) and callable(kind.view)
    converter = importlib.import_module(kind.sdk)
    assert callable(converter.to_spec) and callable(converter.from_view)
    if kind.orchestrator:
        assert importlib.util.find_spec(kind.orchestrator) is not None
        assert kind.resumable


def test_a_spec_without_type_is_a_command_job():
    assert kinds.kind_of({"command": "echo hi"}).type == "command"
    assert kinds.kind(None).type == "command"


def test_an_unknown_type_is_refused_naming_the_known_ones(store, tmp_path):
    with pytest.raises(NotEmulated) as info:
        kinds.submit(store, {"type": "spark", "command": "echo hi"}, tmp_path)
    for known in ("command", "sweep", "pipeline", "automl"):
        assert known in info.value.message
    assert "spark" in info.value.message
    assert store.list_jobs() == []  # nothing recorded


def _toy_submit(store, data, base_path):
    spec = {"name": data.get("name"), "experiment_name": "toys", "tags": {}, "properties": {}, "size": data["size"]}
    submission.name_job(spec)
    store.insert_job(
        {
            "name": spec["name"],
            "type": "toy",
            "experiment_name": spec["experiment_name"],
            "parent_job_name": None,
            "status": "NotStarted",
            "spec": spec,
            "created_at": time.time(),
        }
    )
    return store.get_job(spec["name"])


def _toy_view(store, job, *, tracking=True):
    return {"name": job["name"], "type": "toy", "size": job["spec"]["size"], "status": job["status"]}


def test_a_new_kind_is_one_registry_line(store, tmp_path, monkeypatch):
    module = types.ModuleType("toy_kind")
    module.KIND = JobKind(type="toy", submit=_toy_submit, view=_toy_view, sdk="toy_kind")
    monkeypatch.setitem(sys.modules, "toy_kind", module)
    monkeypatch.setitem(kinds.KINDS, "toy", "toy_kind")  # the one line

    record = kinds.submit(store, {"type": "toy", "name": "t1", "size": 3}, tmp_path)
    assert record["type"] == "toy"
    shown = kinds.view(store, lifecycle.get(store, "t1"))
    assert shown == {"name": "t1", "type": "toy", "size": 3, "status": "NotStarted"}
    assert not kinds.kind("toy").resumable


def test_resume_restarts_the_recorded_orchestrator():
    new = {"type": "sweep", "spec": {"orchestrator": "somewhere.else"}}
    assert lifecycle.orchestrator(new) == "somewhere.else"
    old = {"type": "sweep", "spec": {}}  # recorded before the module was kept on the job: not resumed
    assert lifecycle.orchestrator(old) is None
    assert lifecycle.orchestrator({"type": "command", "spec": {}}) is None
