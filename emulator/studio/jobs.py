"""The Jobs area: the list (filtered, paged, live), a job's page (overview, metrics, params, files, log, child
jobs) and its cancel button."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request, send_file, url_for

from emulator.errors import ValidationError
from emulator.jobs import lifecycle
from emulator.kinds import view as job_view
from emulator.pipelines.views import pipeline_view
from emulator.store.db import ACTIVE
from emulator.studio import charts, reads
from emulator.studio.app import store
from emulator.sweeps.views import trial_summaries
from emulator.tracking import filestore

blueprint = Blueprint("jobs", __name__)
PARENT_TYPES = ("sweep", "pipeline", "automl")


def _filters() -> dict[str, Any]:
    status = request.args.get("status") or None
    if status and status not in reads.STATUSES:
        raise ValidationError(f"Unknown status '{status}'; pick one of {', '.join(reads.STATUSES)}.")
    try:
        page = max(1, int(request.args.get("page") or 1))
    except ValueError:
        raise ValidationError("page must be a whole number.")
    return {"experiment": request.args.get("experiment") or None, "status": status, "page": page}


@blueprint.get("/jobs")
def job_list():
    filters = _filters()
    rows, total = reads.job_page(store(), **filters)
    pages = max(1, -(-total // reads.PER_PAGE))
    return render_template(
        "jobs.html",
        rows=rows,
        total=total,
        pages=pages,
        filters=filters,
        experiments=reads.experiments(store()),
        statuses=reads.STATUSES,
    )


@blueprint.get("/jobs/rows")
def job_rows():
    """The current page's rows again, for the list's live update (one small request a second): only a fingerprint
    while the page is unchanged and none of its jobs is active, else the rows (whose durations move)."""
    filters = _filters()
    fingerprint, active = reads.page_state(store(), **filters)
    if fingerprint == request.args.get("seen") and not active:
        return jsonify({"unchanged": True, "seen": fingerprint})
    rows, total = reads.job_page(store(), **filters)
    return jsonify({"html": render_template("job_rows.html", rows=rows), "total": total, "seen": fingerprint})


# -- a job ------------------------------------------------------------------------------------------------------------
def _sweep_children(job: dict[str, Any]) -> dict[str, Any]:
    objective = job["spec"]["objective"]
    trials = trial_summaries(store(), job)
    space = list(job["spec"].get("search_space") or {})
    x_param = request.args.get("x") if request.args.get("x") in space else (space[0] if space else None)
    best = reads.best_child(job)
    return {
        "kind": "sweep",
        "metric": objective["primary_metric"],
        "goal": objective["goal"],
        "trials": trials,
        "best": best,
        "space": space,
        "x_param": x_param,
        "scatter": charts.scatter(trials, x_param, objective["primary_metric"], best) if x_param else None,
    }


def _pipeline_children(job: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "pipeline", "columns": charts.step_levels(pipeline_view(store(), job, tracking=False)["jobs"])}


def _children(job: dict[str, Any]) -> dict[str, Any] | None:
    """What the Child jobs tab shows: a sweep's trials and scatter, a pipeline's step graph, else a table."""
    if job["type"] == "sweep":
        return _sweep_children(job)
    if job["type"] == "pipeline":
        return _pipeline_children(job)
    rows = reads.child_rows(store(), job)
    if not rows and job["type"] not in PARENT_TYPES:
        return None
    return {"kind": "table", "rows": rows, "best": reads.best_child(job)}


def _overview(view: dict[str, Any]) -> dict[str, Any]:
    """What the Overview tab lists, from the job's view (a sweep's command and environment are its trial's)."""
    trial = view.get("trial") or {}
    environment = view.get("environment") or trial.get("environment")
    if environment is not None and not isinstance(environment, str):  # an inline environment
        environment = reads.pretty(environment)
    return {
        "command": view.get("command") or trial.get("command"),
        "environment": environment,
        "compute": view.get("compute") or "local",
        "inputs": view.get("inputs") or {},
        "outputs": view.get("outputs") or {},
        "error": view.get("error"),
        "tags": view.get("tags") or {},
        "properties": view.get("properties") or {},
        "description": view.get("description"),
    }


@blueprint.get("/jobs/<name>")
def job_page(name: str):
    job = lifecycle.get(store(), name)
    view = job_view(store(), job, tracking=False)
    run = reads.run_dir(store(), job)
    files = {output: reads.list_files(folder) for output, folder in reads.output_folders(store(), job).items()}
    return render_template(
        "job.html",
        job=job,
        view=view,
        overview=_overview(view),
        duration=reads.duration(job),
        active=job["status"] in ACTIVE,
        params=filestore.read_params(run),
        metric_keys=filestore.metric_keys(run),
        related=reads.related_runs(store(), job),
        files=files,
        children=_children(job),
        parent=job["parent_job_name"],
    )


@blueprint.get("/api/jobs/<name>/live")
def job_live(name: str):
    """A job page's one request a second: status, duration, the log since ``log`` (a byte offset; -1: the tail)
    and, for a parent job, its child jobs again."""
    job = lifecycle.get(store(), name)
    try:
        offset = int(request.args.get("log", "-1"))
    except ValueError:
        offset = -1
    text, next_offset = reads.log_chunk(store(), name, offset)
    children = _children(job)
    return jsonify(
        {
            "status": job["status"],
            "active": job["status"] in ACTIVE,
            "duration": reads.duration(job),
            "log": text,
            "log_offset": next_offset,
            "children_html": render_template("job_children.html", job=job, children=children) if children else None,
        }
    )


@blueprint.get("/api/metrics")
def metrics():
    """One metric of one or more runs, by step, for a chart: ``?key=loss&job=a&job=b``."""
    key = request.args.get("key") or ""
    names = request.args.getlist("job")[:20]
    if not key or not names:
        raise ValidationError("Ask for a metric with ?key=<metric>&job=<job name> (job may repeat).")
    return jsonify({"key": key, "series": reads.metric_series(store(), names, key)})


@blueprint.get("/jobs/<name>/files/<output>/<path:path>")
def job_file(name: str, output: str, path: str):
    """A file of a job's output, always as a download (a job's HTML file must never run as a studio page)."""
    target = reads.output_file(store(), store().get_job(name), output, path)
    return send_file(target, mimetype="application/octet-stream", as_attachment=True, download_name=target.name)


@blueprint.post("/jobs/<name>/cancel")
def job_cancel(name: str):
    job = lifecycle.cancel(store(), name)
    return jsonify({"name": name, "status": job["status"], "url": url_for("jobs.job_page", name=name)})
