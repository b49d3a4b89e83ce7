"""The workspace store: concurrent writers across processes, job records, reopening."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from emulator.errors import ResourceExists
from emulator.store import WorkspaceStore, open_store

WRITERS, MODELS_EACH = 6, 15


def _register_models(home: str, barrier, results) -> None:
    """Child process: register MODELS_EACH versions of model 'm' the way models.registry does."""
    try:
        os.environ["AMLEMU_HOME"] = home
        store = open_store()
        barrier.wait(timeout=60)  # start together, so the writers really contend
        versions = []
        for _ in range(MODELS_EACH):
            with store.transaction() as db:
                version = store.next_version(db, "model", "m")
                store.insert_asset(db, "model", "m", version, {"type": "custom_model", "writer": os.getpid()})
            versions.append(version)
        results.put(("ok", versions))
    except BaseException as exc:  # the parent asserts on what every child reports
        results.put(("error", repr(exc)))


def test_concurrent_writers_get_distinct_versions(amlemu_home):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=_register_models, args=(str(amlemu_home), barrier, results)) for _ in range(WRITERS)]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert [r for r in reports if r[0] == "error"] == []
    assert all(proc.exitcode == 0 for proc in procs)
    handed_out = [v for _, versions in reports for v in versions]
    expected = [str(v) for v in range(1, WRITERS * MODELS_EACH + 1)]
    assert sorted(handed_out, key=int) == expected
    stored = [a["version"] for a in open_store().list_assets("model", "m")]
    assert sorted(stored, key=int) == expected


def job_record(name: str, status: str = "Queued") -> dict:
    return {
        "name": name,
        "type": "command",
        "experiment_name": "exp",
        "status": status,
        "spec": {"command": "echo hi"},
        "created_at": time.time(),
    }


def test_duplicate_job_name_rejected(store):
    store.insert_job(job_record("my-job"))
    with pytest.raises(ResourceExists, match="'my-job'"):
        store.insert_job(job_record("my-job", status="Running"))
    assert store.get_job("my-job")["status"] == "Queued"


def test_update_job_only_if_status(store):
    store.insert_job(job_record("my-job", status="Completed"))
    changed = store.update_job("my-job", only_if_status=("Queued", "Running"), status="Canceled", error="x")
    assert changed is False
    job = store.get_job("my-job")
    assert (job["status"], job["error"]) == ("Completed", None)
    assert store.update_job("my-job", only_if_status=("Completed",), exit_code=0) is True
    assert store.get_job("my-job")["exit_code"] == 0


def test_duplicate_asset_version_rejected(store):
    with store.transaction() as db:
        store.insert_asset(db, "model", "m", "1", {})
    with pytest.raises(ResourceExists, match="version 2"):
        with store.transaction() as db:
            store.insert_asset(db, "model", "m", "1", {"other": True})
    assert "other" not in store.get_asset("model", "m", "1")
    assert [a["version"] for a in store.list_assets("model", "m")] == ["1"]


def test_store_survives_reopening(store):
    store.insert_job(job_record("kept-job"))
    with store.transaction() as db:
        store.insert_asset(db, "environment", "env", "3", {"image": "python:3.11"})
    exp_id = store.experiment_id("exp")

    reopened = WorkspaceStore(store.root, store.name)
    assert reopened.get_job("kept-job")["spec"] == {"command": "echo hi"}
    assert reopened.get_asset("environment", "env")["image"] == "python:3.11"
    assert reopened.experiment_id("exp") == exp_id
