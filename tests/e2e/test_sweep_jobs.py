"""Sweep jobs end to end: real trials (child command jobs) logging to MLflow, via the CLI and the SDK."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from emulator.runtime import proctree
from emulator.testing.trials import SLEEPER
from tests.conftest import SAMPLES, processes_mentioning, wait_for

TRIAL = '''\
"""A tiny trial: accuracy = f(x, kernel), logged `steps` times (`bad_steps` if poor), `sleep` s apart."""
import argparse, time
import mlflow

p = argparse.ArgumentParser()
p.add_argument("--x", type=float, default=0.0)
p.add_argument("--kernel", default="linear")
p.add_argument("--steps", type=int, default=1)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--metric", default="accuracy")
p.add_argument("--bad_steps", type=int, default=0, help="steps when the score is below 0.5")
p.add_argument("--marker", default="")
a = p.parse_args()
score = 1 - (a.x - 0.3) ** 2 + (0.1 if a.kernel == "rbf" else 0.0)
steps = a.bad_steps if a.bad_steps and score < 0.5 else a.steps
for step in range(steps):
    mlflow.log_metric(a.metric, score, step=step)
    time.sleep(a.sleep)
print("done", score)
'''
ENV = "azureml:AzureML-sklearn-1.5@latest"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sweep_yml(
    tmp_path: Path,
    command: str,
    search_space: str,
    *,
    name="sweep.yml",
    extra: str = "",
    limits: str = "max_total_trials: 4\n  max_concurrent_trials: 2",
    sampling: str = "random",
) -> Path:
    write(tmp_path / "src" / "trial.py", TRIAL)
    return write(
        tmp_path / name,
        (
            "$schema: https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json\n"
            "type: sweep\n"
            f"trial:\n  code: ./src\n  command: {command}\n  environment: {ENV}\n"
            f"sampling_algorithm: {sampling}\n"
            f"search_space:\n{search_space}"
            "objective:\n  goal: maximize\n  primary_metric: accuracy\n"
            f"limits:\n  {limits}\n"
            "experiment_name: sweeps\n" + extra
        ),
    )


def test_cli_sweep_runs_trials_and_reports_the_best(cli, tmp_path):
    spec = sweep_yml(
        tmp_path,
        "python trial.py --x ${{search_space.x}} --kernel ${{search_space.kernel}}",
        "  x:\n    type: uniform\n    min_value: 0\n    max_value: 1\n"
        "  kernel:\n    type: choice\n    values: [linear, rbf]\n",
        sampling="\n  type: random\n  seed: 7",
        limits="max_total_trials: 5\n  max_concurrent_trials: 3",
    )
    out = cli.run("job", "create", "--file", str(spec), "--name", "sw1", "--stream").stdout
    job = json.loads(out[out.rindex("\n{\n") + 1 :])
    assert job["type"] == "sweep" and job["status"] == "Completed"
    assert job["sampling_algorithm"] == {"type": "random", "seed": 7, "rule": "random"}
    assert job["objective"] == {"goal": "maximize", "primary_metric": "accuracy"}
    assert job["limits"]["max_total_trials"] == 5
    assert job["search_space"]["kernel"] == {"type": "choice", "values": ["linear", "rbf"]}
    assert "trial.py --x ${{search_space.x}}" in job["trial"]["command"]
    assert "trial sw1_4 submitted" in out and "sweep Completed" in out  # the progress log was streamed

    trials = cli.json("job", "list", "--parent-job-name", "sw1")
    assert sorted(t["name"] for t in trials) == [f"sw1_{i}" for i in range(5)]
    assert all(t["status"] == "Completed" and t["parent_job_name"] == "sw1" for t in trials)
    by_name = {t["name"]: t for t in trials}
    for t in trials:  # the sampled values are the trial's inputs and rendered into its command
        params = json.loads(t["properties"]["hyperparameters"])
        assert t["inputs"]["x"] == params["x"] and t["inputs"]["kernel"] == params["kernel"]
        assert t["command"] == f"python trial.py --x {params['x']} --kernel {params['kernel']}"
        expected = 1 - (params["x"] - 0.3) ** 2 + (0.1 if params["kernel"] == "rbf" else 0)
        assert t["metrics"]["accuracy"] == pytest.approx(expected)
    best = max(trials, key=lambda t: t["metrics"]["accuracy"])
    props = job["properties"]
    assert props["best_child_run_id"] == best["name"]
    assert float(props["score"]) == pytest.approx(best["metrics"]["accuracy"])
    assert json.loads(props["best_child_run_hyperparameters"]) == json.loads(
        by_name[best["name"]]["properties"]["hyperparameters"]
    )
    assert {t["name"] for t in job["trials"]} == set(by_name)

    # the same seed samples the same points
    cli.run("job", "create", "--file", str(spec), "--name", "sw2", "--stream")
    again = cli.json("job", "list", "--parent-job-name", "sw2")
    assert sorted(t["properties"]["hyperparameters"] for t in again) == sorted(
        t["properties"]["hyperparameters"] for t in trials
    )
    assert [j["name"] for j in cli.json("job", "list")] == ["sw2", "sw1"]  # trials are children, not listed on top


def test_sdk_sweep_through_create_or_update(ml_client, tmp_path, monkeypatch):
    from azure.ai.ml import command
    from azure.ai.ml.sweep import Choice, MedianStoppingPolicy, SweepJob, Uniform

    write(tmp_path / "src" / "trial.py", TRIAL)
    monkeypatch.chdir(tmp_path)
    job = command(
        code="./src",
        command="python trial.py --x ${{inputs.x}} --kernel ${{inputs.kernel}} --steps 2",
        inputs={"x": 0.5, "kernel": "linear"},
        environment="AzureML-sklearn-1.5@latest",
    )
    sweep = job(x=Uniform(min_value=0.0, max_value=1.0), kernel=Choice(["linear", "rbf"])).sweep(
        sampling_algorithm="random",
        primary_metric="accuracy",
        goal="Maximize",
        early_termination_policy=MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5),
    )
    sweep.set_limits(max_total_trials=4, max_concurrent_trials=2)
    sweep.experiment_name = "sdk-sweeps"
    created = ml_client.jobs.create_or_update(sweep)
    assert isinstance(created, SweepJob) and created.status in ("Queued", "Running", "NotStarted")
    ml_client.jobs.stream(created.name)
    done = ml_client.jobs.get(created.name)
    assert isinstance(done, SweepJob) and done.status == "Completed"
    assert done.objective.primary_metric == "accuracy" and done.limits.max_concurrent_trials == 2
    trials = ml_client.jobs.list(parent_job_name=created.name)
    assert len(trials) == 4 and all(t.status == "Completed" for t in trials)

    import mlflow

    mlflow.set_tracking_uri(ml_client.workspaces.get().mlflow_tracking_uri)
    scores = {t.name: mlflow.get_run(t.name).data.metrics["accuracy"] for t in trials}
    assert done.properties["best_child_run_id"] == max(scores, key=scores.get)
    run = mlflow.get_run(done.properties["best_child_run_id"])
    assert run.data.tags["mlflow.parentRunId"] == created.name


def test_bandit_policy_cancels_a_bad_trial(cli, tmp_path):
    # grid order: the good trial (x=0.3) runs first and ends; the bad one (x=-2) would report for a
    # minute, but the bandit policy stops it at its first report, far outside 1.0 / (1 + 0.1)
    spec = sweep_yml(
        tmp_path,
        "python trial.py --x ${{search_space.x}} --steps 3 --sleep 0.2 --bad_steps 300",
        "  x:\n    type: choice\n    values: [0.3, -2.0]\n",
        sampling="grid",
        limits="max_total_trials: 5\n  max_concurrent_trials: 1",
        extra="early_termination:\n  type: bandit\n  slack_factor: 0.1\n  evaluation_interval: 1\n",
    )
    proc = cli.run("job", "create", "--file", str(spec), "--name", "bandit1", "--stream")
    job = cli.json("job", "show", "--name", "bandit1")
    assert job["status"] == "Completed" and job["properties"]["best_child_run_id"] == "bandit1_0"
    assert job["properties"]["total_trials"] == "2"  # the grid has 2 points: max_total_trials 5 is capped
    good, bad = (cli.json("job", "show", "--name", f"bandit1_{i}") for i in (0, 1))
    assert good["status"] == "Completed" and "early_terminated_by" not in good["properties"]
    assert bad["status"] == "Canceled"
    assert bad["properties"]["early_terminated_by"] == "BanditPolicy"
    assert bad["error"]["message"].startswith("Early terminated by BanditPolicy at interval")
    assert len(bad["metrics"]) == 1 and bad["metrics"]["accuracy"] < 0
    assert "bandit1_1 stopped: Early terminated by BanditPolicy" in proc.stdout
    assert [t.get("early_terminated_by") for t in job["trials"]] == [None, "BanditPolicy"]


def test_a_metric_never_logged_fails_the_sweep_naming_it(cli, tmp_path):
    spec = sweep_yml(
        tmp_path,
        "python trial.py --x ${{search_space.x}} --metric loss",
        "  x:\n    type: choice\n    values: [0.1, 0.2]\n",
        limits="max_total_trials: 2\n  max_concurrent_trials: 2",
    )
    proc = cli.run("job", "create", "--file", str(spec), "--name", "nometric", "--stream", check=False)
    assert proc.returncode != 0
    job = cli.json("job", "show", "--name", "nometric")
    assert job["status"] == "Failed"
    message = job["error"]["message"]
    assert "No trial logged the primary metric 'accuracy'" in message and "The trials logged: loss" in message
    assert "mlflow.log_metric('accuracy', value)" in message
    assert all(t["status"] == "Completed" for t in cli.json("job", "list", "--parent-job-name", "nometric"))


def test_a_bad_search_space_is_refused_and_nothing_recorded(cli, tmp_path):
    spec = sweep_yml(
        tmp_path,
        "python trial.py --x ${{search_space.x}}",
        "  x:\n    type: loguniform\n    min_value: 2\n    max_value: -2\n",
    )
    proc = cli.run("job", "create", "--file", str(spec), check=False)
    assert proc.returncode != 0
    assert "search_space.x (loguniform): min_value (2) must be less than max_value (-2)" in proc.stderr
    grid = sweep_yml(
        tmp_path,
        "python trial.py --x ${{search_space.x}}",
        "  x:\n    type: uniform\n    min_value: 0\n    max_value: 1\n",
        name="grid.yml",
        sampling="grid",
    )
    proc = cli.run("job", "create", "--file", str(grid), check=False)
    assert proc.returncode != 0 and "Grid sampling takes only choice parameters; x (uniform)" in proc.stderr
    assert cli.json("job", "list") == []
    jobs_dir = cli.home / "workspaces" / "default" / "jobs"
    assert not jobs_dir.exists() or list(jobs_dir.iterdir()) == []


def engine_sweep(tmp_path: Path, command: str, values: list, limits: dict) -> dict:
    """A sweep as the engine takes it (a dict): the SDK floors timeouts under 60 s to 60, as Azure does."""
    write(tmp_path / "src" / "trial.py", TRIAL)
    return {
        "type": "sweep",
        "trial": {"code": "./src", "command": command, "environment": ENV},
        "search_space": {"x": {"type": "choice", "values": values}},
        "sampling_algorithm": "grid",
        "objective": {"goal": "maximize", "primary_metric": "accuracy"},
        "limits": limits,
    }


def test_trial_timeout_cancels_the_slow_trial_and_timeout_the_sweep(store, tmp_path):
    from emulator import kinds
    from emulator.jobs import lifecycle

    slow = "python trial.py --x ${{search_space.x}} --steps 2 --sleep 0.05 --bad_steps 600"
    tt = kinds.submit(
        store,
        {
            **engine_sweep(
                tmp_path, slow, [0.3, -2.0], {"max_total_trials": 2, "max_concurrent_trials": 2, "trial_timeout": 20}
            ),
            "name": "tt",
        },
        tmp_path,
    )
    whole = kinds.submit(
        store,
        {
            **engine_sweep(
                tmp_path, slow, [-2.0, -3.0, -4.0], {"max_total_trials": 3, "max_concurrent_trials": 1, "timeout": 4}
            ),
            "name": "to",
        },
        tmp_path,
    )
    tt, whole = lifecycle.wait(store, tt["name"], timeout=60), lifecycle.wait(store, whole["name"], timeout=60)
    assert tt["status"] == "Completed" and tt["spec"]["properties"]["best_child_run_id"] == "tt_0"
    fast, slow = store.get_job("tt_0"), store.get_job("tt_1")
    assert fast["status"] == "Completed"
    assert slow["status"] == "Canceled" and slow["spec"]["properties"]["canceled_by"] == "limits.trial_timeout"
    assert "limits.trial_timeout (20 s)" in slow["error"]
    assert whole["status"] == "Canceled" and "limits.timeout (4 s)" in whole["error"]
    trials = store.list_jobs("to")  # the running trial, and the next one if it was prepared ahead
    assert all(t["status"] == "Canceled" and "ran past limits.timeout" in t["error"] for t in trials)
    assert [t["name"] for t in trials if t["started_at"]] == ["to_0"]  # the sweep's active trial went with it


def test_cancelling_a_sweep_stops_every_trial_and_leaves_no_process(cli, store, tmp_path):
    marker = f"sweep-cancel-{os.getpid()}-{time.time_ns()}"
    spec = sweep_yml(
        tmp_path,
        f"python trial.py --x ${{{{search_space.x}}}} --steps 600 --sleep 0.1 --marker {marker}",
        "  x:\n    type: choice\n    values: [0.1, 0.2, 0.3, 0.4]\n",
        limits="max_total_trials: 4\n  max_concurrent_trials: 2",
    )
    sweep = cli.json("job", "create", "--file", str(spec), "--name", "tocancel")
    assert sweep["status"] in ("Queued", "Running")
    home = str(cli.home)
    wait_for(lambda: len(processes_mentioning(marker)) >= 2, "two trial processes to run")
    running = [t for t in cli.json("job", "list", "--parent-job-name", "tocancel") if t["status"] == "Running"]
    assert len(running) == 2  # max_concurrent_trials; the next ones, prepared ahead, are Queued
    assert len(processes_mentioning(home)) >= 3  # the orchestrator and two trial supervisors, at least
    cli.run("job", "cancel", "--name", "tocancel")
    done = wait_for(
        lambda: (j := cli.json("job", "show", "--name", "tocancel"))["status"] in ("Canceled", "Failed") and j,
        "the sweep to end",
    )
    assert done["status"] == "Canceled"
    trials = cli.json("job", "list", "--parent-job-name", "tocancel")
    assert all(t["status"] == "Canceled" for t in trials)  # those prepared ahead too
    ran = [t["name"] for t in store.list_jobs("tocancel") if t["started_at"]]
    assert sorted(ran) == ["tocancel_0", "tocancel_1"]  # no trial started after the cancel
    wait_for(lambda: not processes_mentioning(marker) and not processes_mentioning(home), "every process to end")


def test_the_iris_sample_sweep_runs(cli):
    job = cli.json(
        "job",
        "create",
        "--file",
        str(SAMPLES / "iris" / "sweep.yml"),
        "--name",
        "iris-sweep",
        "--set",
        "limits.max_total_trials=2",
        "--stream",
    )
    assert job["status"] == "Completed"
    trials = cli.json("job", "list", "--parent-job-name", "iris-sweep")
    assert len(trials) == 2 and all(t["metrics"]["accuracy"] > 0.5 for t in trials)
    best = job["properties"]["best_child_run_id"]
    assert max(trials, key=lambda t: (t["metrics"]["accuracy"], -int(t["name"].rsplit("_", 1)[1])))["name"] == best
    assert any(a == "outputs/model.onnx" for a in cli.json("job", "show", "--name", best)["artifacts"])


def test_a_killed_orchestrator_is_restarted_and_the_sweep_resumes(cli, store, tmp_path):
    import signal

    marker = f"sweep-lost-{os.getpid()}-{time.time_ns()}"
    spec = sweep_yml(
        tmp_path,
        f"python trial.py --x ${{{{search_space.x}}}} --steps 30 --sleep 0.1 --marker {marker}",
        "  x:\n    type: choice\n    values: [0.1, 0.2, 0.3, 0.4]\n",
        limits="max_total_trials: 4\n  max_concurrent_trials: 2",
    )
    cli.json("job", "create", "--file", str(spec), "--name", "lost")
    wait_for(lambda: len(processes_mentioning(marker)) >= 2, "two trial processes to run")

    def orchestrators():
        return [pid for pid in processes_mentioning("emulator.sweeps.orchestrator " + str(store.root))]

    (old,) = orchestrators()
    os.kill(old, signal.SIGKILL)  # as a machine restart would, for the orchestrator
    wait_for(lambda: old not in orchestrators(), "the orchestrator to die")
    job = cli.json("job", "show", "--name", "lost")  # the read notices the lost orchestrator and restarts it
    assert job["status"] == "Running"
    (new,) = orchestrators()
    assert new != old and store.get_job("lost")["pid"] == new
    assert cli.json("job", "show", "--name", "lost")["status"] == "Running"  # one successor, not one per read
    assert orchestrators() == [new]
    done = wait_for(
        lambda: (j := cli.json("job", "show", "--name", "lost"))["status"] not in ("Running", "Queued") and j,
        "the sweep to end",
        timeout=120,
    )
    assert done["status"] == "Completed"
    trials = store.list_jobs("lost")
    ran = sorted(t["name"] for t in trials if t["run_pid"])
    assert len(ran) == 4 and all(store.get_job(n)["status"] == "Completed" for n in ran)  # max_total_trials
    # the trials running when the orchestrator died went on; those prepared ahead and canceled at their
    # gate never ran: their hyperparameters ran again as new trials
    assert {"lost_0", "lost_1"} <= set(ran)
    assert all(t["status"] == "Canceled" for t in trials if not t["run_pid"])
    params = sorted(store.get_job(n)["spec"]["properties"]["hyperparameters"] for n in ran)
    assert params == sorted(f'{{"x": {x}}}' for x in (0.1, 0.2, 0.3, 0.4))  # every point of the space once
    log = (store.job_dir("lost") / "artifacts" / "user_logs" / "std_log.txt").read_text()
    assert "orchestrator was lost and restarted: resuming" in log
    wait_for(
        lambda: not processes_mentioning(marker) and not processes_mentioning(str(cli.home)), "every process to end"
    )


def sleeper_sweep(tmp_path: Path, name: str, seconds: list[float], concurrency: int, marker: str) -> dict:
    write(tmp_path / "src" / "sleeper.py", SLEEPER)
    return {
        "type": "sweep",
        "name": name,
        "trial": {
            "code": "./src",
            "environment": ENV,
            "command": f"python sleeper.py ${{{{search_space.s}}}} {marker}",
        },
        "search_space": {"s": {"type": "choice", "values": seconds}},
        "sampling_algorithm": "grid",
        "objective": {"goal": "maximize", "primary_metric": "accuracy"},
        "limits": {"max_total_trials": len(seconds), "max_concurrent_trials": concurrency},
    }


def test_trials_prepared_ahead_never_exceed_max_concurrent_trials(store, tmp_path):
    from emulator import kinds
    from emulator.jobs import lifecycle

    sweep = kinds.submit(
        store, sleeper_sweep(tmp_path, "ahead", [0.3 + i / 100 for i in range(8)], 2, "ahead"), tmp_path
    )
    assert lifecycle.wait(store, sweep["name"], timeout=60)["status"] == "Completed"
    trials = store.list_jobs("ahead")
    assert len(trials) == 8 and all(t["status"] == "Completed" for t in trials)
    for u in trials:  # running at once, from the records: never above max_concurrent_trials
        assert sum(1 for t in trials if t["started_at"] <= u["started_at"] < t["ended_at"]) <= 2
    # and the sweep did submit trials ahead of a free slot (they waited at their gate, prepared)
    assert any(
        sum(1 for t in trials if t is not u and t["created_at"] <= u["created_at"] < t["ended_at"]) >= 2 for u in trials
    )


def _gated_trial(store, sweep: str) -> dict:
    """Wait until the sweep's first trial completed, its second runs and its third waits at its gate."""

    def gated():
        trials = {t["name"]: t for t in store.list_jobs(sweep)}
        third = trials.get(f"{sweep}_2")
        return (
            third
            and third["status"] == "Queued"
            and trials[f"{sweep}_1"]["status"] == "Running"
            and (store.job_dir(third["name"]) / ".trial-slot-bell").exists()
            and third
        )

    return wait_for(gated, "the third trial to wait at its gate")


def test_a_trial_waiting_for_its_slot_is_canceled_with_its_sweep(store, tmp_path):
    from emulator import kinds
    from emulator.jobs import lifecycle

    marker = f"gate-cancel-{os.getpid()}-{time.time_ns()}"
    kinds.submit(store, sleeper_sweep(tmp_path, "gatecancel", [0.2, 60.0, 61.0], 1, marker), tmp_path)
    _gated_trial(store, "gatecancel")
    assert len(processes_mentioning(marker)) == 1  # only the running trial's command
    lifecycle.cancel(store, "gatecancel")
    assert lifecycle.wait(store, "gatecancel", timeout=60)["status"] == "Canceled"
    third = wait_for(lambda: (t := store.get_job("gatecancel_2"))["status"] == "Canceled" and t, "the gated trial")
    assert third["started_at"] is None and third["run_pid"] is None
    assert store.get_job("gatecancel_1")["status"] == "Canceled"
    wait_for(
        lambda: not processes_mentioning(marker) and not processes_mentioning(str(store.root)), "every process to end"
    )


def test_a_trial_waiting_for_its_slot_ends_when_its_orchestrator_is_lost(store, tmp_path):
    import signal

    from emulator import kinds
    from emulator.jobs import lifecycle

    marker = f"gate-lost-{os.getpid()}-{time.time_ns()}"
    kinds.submit(store, sleeper_sweep(tmp_path, "gatelost", [0.2, 60.0, 61.0], 1, marker), tmp_path)
    _gated_trial(store, "gatelost")
    os.kill(store.get_job("gatelost")["pid"], signal.SIGKILL)
    # nobody reads the sweep: the gated trial notices on its own, and starts nothing
    third = wait_for(
        lambda: (t := store.get_job("gatelost_2"))["status"] == "Canceled" and t, "the gated trial", timeout=15
    )
    assert "ended or was lost" in third["error"] and third["started_at"] is None
    assert len(processes_mentioning(marker)) == 1
    resumed = lifecycle.get(store, "gatelost")  # the read restarts the orchestrator: the sweep resumes
    assert resumed["status"] == "Running" and resumed["pid"] != store.get_job("gatelost_1")["pid"]
    assert lifecycle.get(store, "gatelost_1")["status"] == "Running"  # the running trial went on
    lifecycle.cancel(store, "gatelost")
    assert lifecycle.wait(store, "gatelost", timeout=60)["status"] == "Canceled"
    assert lifecycle.wait(store, "gatelost_1", timeout=60)["status"] == "Canceled"
    assert [
        t["name"] for t in store.list_jobs("gatelost") if t["name"] not in ("gatelost_0", "gatelost_1", "gatelost_2")
    ] == []
    wait_for(
        lambda: not processes_mentioning(marker) and not processes_mentioning(str(store.root)), "every process to end"
    )


def test_a_sweep_on_a_cluster_fans_its_trials_over_the_nodes(ml_client, store, tmp_path):
    from azure.ai.ml.entities import AmlCompute

    from emulator import kinds
    from emulator.jobs import lifecycle

    ml_client.compute.begin_create_or_update(
        AmlCompute(name="cpu-cluster", size="Standard_DS3_v2", min_instances=0, max_instances=2)
    ).result()
    # max_concurrent_trials (4) is above the cluster's max_instances (2): the nodes bound the sweep
    spec = {**sleeper_sweep(tmp_path, "fan", [1.0, 1.01, 1.02, 1.03, 1.04], 4, "fan"), "compute": "azureml:cpu-cluster"}
    kinds.submit(store, spec, tmp_path)
    seen: dict[str, set[str]] = {}  # node -> the trials it ran
    most = 0
    while lifecycle.get(store, "fan")["status"] not in ("Completed", "Failed", "Canceled"):
        nodes = ml_client.compute.list_nodes("cpu-cluster")
        assert len(nodes) <= 2  # never above max_instances
        busy = [n for n in nodes if n.current_job_name]
        most = max(most, len(busy))
        for node in busy:
            seen.setdefault(node.node_id, set()).add(node.current_job_name)
        time.sleep(0.05)
    sweep = lifecycle.get(store, "fan")
    assert sweep["status"] == "Completed" and sweep["spec"]["properties"]["best_child_run_id"] == "fan_0"
    trials = store.list_jobs("fan")
    assert sorted(t["name"] for t in trials) == [f"fan_{i}" for i in range(5)]
    assert all(t["status"] == "Completed" and t["spec"]["compute"] == "cpu-cluster" for t in trials)
    assert most == 2 and len(seen) == 2  # both nodes worked, each on trials of the sweep
    assert set().union(*seen.values()) == {f"fan_{i}" for i in range(5)}
    for u in trials:  # running at once, from the records: never above the node count
        assert sum(1 for t in trials if t["started_at"] <= u["started_at"] < t["ended_at"]) <= 2


def test_a_sweep_lost_once_too_often_fails_and_stops_its_trials(store, tmp_path):
    import signal

    from emulator import kinds
    from emulator.jobs import lifecycle

    marker = f"lost-often-{os.getpid()}-{time.time_ns()}"
    kinds.submit(store, sleeper_sweep(tmp_path, "often", [60.0, 61.0], 2, marker), tmp_path)
    wait_for(lambda: len(processes_mentioning(marker)) == 2, "both trials to run")
    (store.job_dir("often") / ".resume.lock").write_text("." * lifecycle.MAX_RESUMES)  # restarted that often already
    before = store.get_job("often")
    os.kill(before["pid"], signal.SIGKILL)
    wait_for(lambda: not proctree.is_alive(before["pid"], before["pid_start"]), "the orchestrator to die")
    lost = lifecycle.get(store, "often")
    assert lost["status"] == "Failed" and f"restarted {lifecycle.MAX_RESUMES} times already" in lost["error"]
    assert all(lifecycle.wait(store, t["name"], timeout=60)["status"] == "Canceled" for t in store.list_jobs("often"))
    wait_for(lambda: not processes_mentioning(marker), "the trials' processes to end")
