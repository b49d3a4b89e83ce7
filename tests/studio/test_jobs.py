"""The Jobs area in a browser: the list updating live, a job's metrics charts, params, files and log, a sweep's
best trial, a pipeline's steps, cancel, and the CSRF and Host checks."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from azure.ai.ml import command, load_job
from azure.ai.ml.sweep import Choice

from emulator.jobs import lifecycle
from emulator.testing.trials import SLEEPER
from tests.conftest import wait_for

pytestmark = pytest.mark.browser

ENV = "azureml:AzureML-sklearn-1.5@latest"
#: writes its metrics the way mlflow.log_metric does (MLflow's file store), without MLflow's 1.5 s import
METRICS = textwrap.dedent(
    """\
    import os, sys, time
    from urllib.parse import unquote, urlparse
    run = os.path.join(unquote(urlparse(os.environ["MLFLOW_TRACKING_URI"]).path), os.environ["MLFLOW_EXPERIMENT_ID"],
                       os.environ["MLFLOW_RUN_ID"])
    now = int(time.time() * 1000)
    for key, steps in (("loss", int(sys.argv[1])), ("long", int(sys.argv[2]))):
        with open(os.path.join(run, "metrics", key), "a") as f:
            f.writelines(f"{now} {1 / (1 + step)} {step}\\n" for step in range(steps))
    with open(os.path.join(run, "params", "lr"), "w") as f:
        f.write("0.01")
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.txt", "w") as f:
        f.write("weights")
    print("hello from the job")
    """
)
SLEEP = "import sys, time; time.sleep(float(sys.argv[1])); print('slept')\n"
PIPELINE = """\
type: pipeline
experiment_name: studio-pipeline
jobs:
  first:
    type: command
    command: echo one > ${{outputs.out}}/x.txt
    environment: azureml:AzureML-sklearn-1.5@latest
    outputs: {out: {type: uri_folder}}
  second:
    type: command
    command: cat ${{inputs.inp}}/x.txt
    environment: azureml:AzureML-sklearn-1.5@latest
    inputs: {inp: "${{parent.jobs.first.outputs.out}}"}
"""


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("studio-src")
    (folder / "metrics.py").write_text(METRICS)
    (folder / "sleep.py").write_text(SLEEP)
    (folder / "sleeper.py").write_text(SLEEPER)
    (folder / "pipeline.yml").write_text(PIPELINE)
    return folder


def submit(workspace, src: Path, line: str, name: str, experiment: str, **inputs):
    job = command(code=str(src), command=line, environment=ENV, experiment_name=experiment, name=name, inputs=inputs)
    return workspace.jobs.create_or_update(job)


@pytest.fixture(scope="module")
def jobs(workspace, src):
    """The module's workspace run through its life: two metrics jobs, a sweep and a pipeline, all completed."""
    submit(workspace, src, "python metrics.py 250 1500", "metrics-a", "studio-metrics")
    submit(workspace, src, "python metrics.py 100 10", "metrics-b", "studio-metrics")
    trial = command(code=str(src), command="python sleeper.py ${{inputs.s}}", inputs={"s": 0.1}, environment=ENV)
    sweep = trial(s=Choice([0.3, 0.05, 0.6])).sweep(
        sampling_algorithm="grid", primary_metric="accuracy", goal="Maximize"
    )
    sweep.set_limits(max_total_trials=3, max_concurrent_trials=2)
    sweep.name, sweep.experiment_name = "studio-sweep", "studio-sweep"
    workspace.jobs.create_or_update(sweep)
    pipeline = workspace.jobs.create_or_update(load_job(src / "pipeline.yml"))
    names = ["metrics-a", "metrics-b", "studio-sweep", pipeline.name]
    for name in names:
        assert lifecycle.wait(workspace.store, name, timeout=120)["status"] == "Completed", name
    return {"pipeline": pipeline.name}


def test_the_job_list_shows_a_new_jobs_status_change_without_a_reload(workspace, src, jobs, studio_page):
    page = studio_page.open("/jobs")
    page.evaluate("window.notReloaded = true")
    studio_page.shot("jobs-list")
    submit(workspace, src, "python sleep.py 3", "live-job", "studio-live")
    row = 'tr[data-job="live-job"]'
    page.wait_for_selector(f'{row}[data-status="Running"]')
    studio_page.shot("jobs-list-running")
    page.wait_for_selector(f'{row}[data-status="Completed"]', timeout=60_000)
    assert page.evaluate("window.notReloaded") is True  # the row changed in place
    assert page.inner_text(f"{row} .status") == "Completed"
    assert page.inner_text(f"{row} td:nth-child(3)") == "studio-live"


def test_the_job_list_filters_by_experiment_and_status(jobs, studio_page):
    page = studio_page.open("/jobs?experiment=studio-metrics")
    assert sorted(page.eval_on_selector_all("#job-list tbody tr", "rows => rows.map(r => r.dataset.job)")) == [
        "metrics-a",
        "metrics-b",
    ]
    page.select_option('select[name="status"]', "Failed")  # submits the filter form
    page.wait_for_url("**status=Failed**")
    assert page.eval_on_selector_all("#job-list tbody tr[data-job]", "rows => rows.length") == 0


def test_metrics_are_charted_with_every_point_and_runs_compare(jobs, studio_page):
    page = studio_page.open("/jobs/metrics-a#metrics")
    loss = page.wait_for_selector('.chart.drawn[data-metric="loss"]')
    assert loss.get_attribute("data-points") == "250"
    assert loss.query_selector("canvas") is not None  # drawn by uPlot
    long = page.wait_for_selector('.chart.drawn[data-metric="long"]')
    assert long.get_attribute("data-logged") == "1500"  # downsampled for the chart, not dropped
    assert 0 < int(long.get_attribute("data-points")) <= 600
    studio_page.shot("job-metrics")
    page.check('#compare-runs input[value="metrics-b"]')
    both = page.wait_for_selector('.chart.drawn[data-metric="loss"][data-series="2"]')
    assert both.get_attribute("data-points") == "350"  # 250 of metrics-a, 100 of metrics-b
    studio_page.shot("job-metrics-compared")


def test_a_jobs_overview_params_files_and_log(jobs, studio_page):
    page = studio_page.open("/jobs/metrics-a")
    assert "python metrics.py 250 1500" in page.inner_text("#job-command")
    assert "lr" in page.inner_text("#params") and "0.01" in page.inner_text("#params")
    studio_page.shot("job-overview")
    page.click('[data-tab="outputs"]')
    page.wait_for_function("document.getElementById('log').textContent.includes('hello from the job')")
    with page.expect_download() as download:
        page.click('a:text("outputs/model.txt")')
    assert Path(download.value.path()).read_text() == "weights"
    studio_page.shot("job-outputs-and-log")


def test_a_sweeps_best_trial_is_marked(workspace, jobs, studio_page):
    best = workspace.store.get_job("studio-sweep")["spec"]["properties"]["best_child_run_id"]
    trials = {t["name"]: t for t in workspace.store.list_jobs("studio-sweep")}
    hyper = json.loads(trials[best]["spec"]["properties"]["hyperparameters"])
    assert hyper == {"s": 0.05}  # accuracy = 1 / (1 + s): the shortest sleep wins
    page = studio_page.open("/jobs/studio-sweep#children")
    marked = page.query_selector_all("#trial-scatter circle.best")
    assert [c.get_attribute("data-trial") for c in marked] == [best]
    assert page.eval_on_selector_all("#trial-scatter circle", "cs => cs.length") == 3
    assert page.get_attribute("#trials tr.best", "data-trial") == best
    assert page.inner_text("#best-trial") == best
    studio_page.shot("sweep-trials")


def test_a_pipelines_steps_show_their_order_and_status(jobs, studio_page):
    page = studio_page.open(f"/jobs/{jobs['pipeline']}#children")
    first, second = page.query_selector('.step[data-step="first"]'), page.query_selector('.step[data-step="second"]')
    assert "Completed" in first.inner_text() and "Completed" in second.inner_text()
    assert "after first" in second.inner_text()
    assert first.bounding_box()["x"] < second.bounding_box()["x"]  # the graph reads left to right
    studio_page.shot("pipeline-steps")


def _post(studio, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", studio.port, timeout=30)
    try:
        conn.request("POST", path, body=b"{}", headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_cancel_needs_the_pages_csrf_token_and_cancels_from_the_button(workspace, src, studio, studio_page):
    submit(workspace, src, "python sleep.py 120", "to-cancel", "studio-cancel")
    wait_for(lambda: lifecycle.get(workspace.store, "to-cancel")["status"] == "Running", "the job to run")
    status, body = _post(studio, "/jobs/to-cancel/cancel")
    assert status == 403 and b"CSRF" in body
    status, _ = _post(studio, "/jobs/to-cancel/cancel", {"X-CSRF-Token": "a guess"})
    assert status == 403
    assert lifecycle.get(workspace.store, "to-cancel")["status"] == "Running"  # refused: nothing happened
    page = studio_page.open("/jobs/to-cancel")
    page.click("#cancel-job")
    page.wait_for_selector("#job-status.Canceled", timeout=60_000)
    assert lifecycle.get(workspace.store, "to-cancel")["status"] == "Canceled"
    studio_page.shot("job-canceled")


def test_a_foreign_host_is_refused(studio):
    """A site whose name was rebound to 127.0.0.1 sends its own Host: it never gets a page (nor the token in it)."""
    conn = http.client.HTTPConnection("127.0.0.1", studio.port, timeout=30)
    try:
        conn.request("GET", "/jobs", headers={"Host": "attacker.example"})
        response = conn.getresponse()
        assert response.status == 403
        assert b"csrf-token" not in response.read()
    finally:
        conn.close()


def test_amlemu_studio_prints_its_url_and_serves_the_workspace(workspace, jobs, studio_page):
    home = workspace.store.root.parent.parent  # $AMLEMU_HOME/workspaces/<name>
    env = {**os.environ, "AMLEMU_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli.main", "studio"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, f"no URL in {line!r}"
        page = studio_page.page
        page.goto(url[0])
        assert page.query_selector('#job-list tr[data-job="metrics-a"]') is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0  # stops cleanly
