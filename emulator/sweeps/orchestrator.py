"""The sweep orchestrator: samples trials, runs them as child command jobs, stops the poor ones.

Run as ``python -m emulator.sweeps.orchestrator <workspace-dir> <sweep-name>`` (started by
``emulator.sweeps.service`` as a command job's supervisor is). It

* submits trials ``<sweep>_0``, ``<sweep>_1``, ... through ``emulator.jobs.command.submit_command`` with
  ``parent_job_name=<sweep>``, their inputs carrying the sampled values and
  ``${{search_space.x}}`` rendered, keeping at most ``max_concurrent_trials`` of them running: a
  trial's supervisor waits at its slot gate (:func:`emulator.jobs.supervisor.open_trial_slot`)
  until the sweep gives it a slot;
* prepares the next trials ahead (submits them, their supervisors get ready at the gate), so a
  slot is refilled the moment it frees: the second wave once the first one runs, then each trial
  when the running ones are expected to end within ``PREPARE_AHEAD_S``, from the run times of
  the trials that completed (not for ``bayesian`` sampling, which samples from the results of
  the trials that ended);
* reads each trial's primary metric from its MLflow run as it is logged, applies the early
  termination policy (:mod:`emulator.sweeps.policies`) and ``limits.trial_timeout``, cancelling
  the trials they stop and recording why;
* ends ``Completed`` with the best trial in its properties (``best_child_run_id``, ``score``,
  ``best_child_run_hyperparameters``), ``Failed`` when every trial failed or none logged the
  primary metric, ``Canceled`` on cancel or ``limits.timeout`` (its active trials with it).

Progress goes to the sweep's ``user_logs/std_log.txt``. SIGTERM (``cancel``) stops every active
trial before the sweep is recorded Canceled.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.jobs import lifecycle, submission
from emulator.jobs.orchestrator import ParentOrchestrator
from emulator.jobs.supervisor import open_trial_slot
from emulator.store import WorkspaceStore
from emulator.store.db import TERMINAL
from emulator.sweeps import space as spaces
from emulator.sweeps.bayesian import BayesianSampler
from emulator.sweeps.policies import POLICY_NAMES, decide
from emulator.sweeps.spec import render_search_space
from emulator.tracking import filestore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import SweepJobSpec

POLL_S = 0.02
STOP_GRACE_S = 30.0  # how long stopped trials get to record their end
PREPARE_AHEAD_S = 1.0  # submit a trial this long before a slot is expected to free (start-up takes 0.1-0.3 s)
SETTLE_S = 0.1  # but not before the running trial has been running this long


@dataclass
class Trial:
    name: str
    index: int
    params: dict[str, Any]
    status: str = "NotStarted"
    values: list[float] = field(default_factory=list)
    evaluated: int = 0  # the last interval the policy looked at
    stop_reason: str | None = None  # why the sweep is stopping it
    stopped_by: str | None = None  # the policy's name, or limits.trial_timeout
    run_dir: Path | None = None
    parent_tagged: bool = False
    error: str | None = None
    started_at: float | None = None
    never_ran: bool = False  # canceled before its command started, when the orchestrator was lost


def make_sampler(spec: dict[str, Any]):
    algo, space = spec["sampling_algorithm"], spec["search_space"]
    if algo["type"] == "grid":
        return spaces.GridSampler(space)
    if algo["type"] == "bayesian":
        return BayesianSampler(space, spec["objective"]["goal"])
    return spaces.RandomSampler(space, algo.get("seed"), algo.get("rule") or "random")


def trial_inputs(spec: SweepJobSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The sweep's inputs (YAML shape) plus each sampled value not shadowed by an input of that name."""
    inputs: dict[str, Any] = {}
    for key, value in spec["inputs"].items():
        inputs[key] = (
            value["value"]
            if value["type"] == "literal"
            else {"type": value["type"], "path": value["path"], "mode": value["mode"]}
        )
    for key, value in params.items():
        inputs.setdefault(key, value)
    return inputs


def _fmt_params(params: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v!r}" if isinstance(v, str) else f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in params.items()
    )


class Orchestrator(ParentOrchestrator["SweepJobSpec"]):
    kind = "sweep"
    slot_gated_children = True  # a trial runs once the sweep gives it a slot (max_concurrent_trials)

    def __init__(self, store: WorkspaceStore, name: str):
        super().__init__(store, name)
        self.metric = self.spec["objective"]["primary_metric"]
        self.goal = self.spec["objective"]["goal"]
        self.policy = self.spec["early_termination"]
        self.limits = self.spec["limits"]
        self.slotted: set[str] = set()  # the trials given a slot (running, or starting)
        self.run_times: list[float] = []  # of the completed trials
        self.exhausted = False
        self.rerun: list[dict[str, Any]] = []  # hyperparameters of trials that never ran (see _resume)

    # -- lifecycle ----------------------------------------------------------------------------
    def _prepare(self) -> None:
        spec = self.spec
        self.start_tracking()
        self.sampler = make_sampler(spec)
        total = self.limits["max_total_trials"]
        size = getattr(self.sampler, "size", None)
        if size is not None and size < total:
            total = size
        self.total = total
        concurrency = self.limits["max_concurrent_trials"]
        note = ""
        if concurrency is None:
            concurrency = total
            if not spec["compute"]:
                cap = max(os.cpu_count() or 1, 1)
                if concurrency > cap:
                    concurrency, note = cap, f" (max_concurrent_trials unset: capped at this machine's {cap} cores)"
        self.concurrency = min(concurrency, total)
        algo = spec["sampling_algorithm"]
        self.prepare_ahead = algo["type"] != "bayesian"  # TPE samples from the results of ended trials
        seed = f", seed {algo['seed']}" if algo.get("seed") is not None else ""
        policy = (
            f"{POLICY_NAMES[self.policy['type']]} (evaluation_interval {self.policy['evaluation_interval']}, "
            f"delay_evaluation {self.policy['delay_evaluation']})"
            if self.policy
            else "none"
        )
        self.log(
            f"sweep {self.name}: {algo['type']} sampling{seed}; objective: {self.goal} {self.metric}; "
            f"up to {total} trial(s), {self.concurrency} at a time{note}; early termination: {policy}"
        )
        if size is not None:
            self.log(f"search space size: {size}")
        self.deadline = time.monotonic() + float(self.limits["timeout"]) - self.elapsed()

    def _resume(self) -> None:
        """Take up the trials recorded before the orchestrator was lost.

        The sampler is advanced past them (seeded random and grid sampling then go on as they
        would have; bayesian sampling is told their results as they are read). A trial that ended
        is counted as it ended; one still running or waiting at its gate is watched again; one
        canceled before it ever started (at its gate, or never started) does not count toward
        ``max_total_trials``: the sweep runs its hyperparameters again, as a new trial.
        """
        for record in self.children_to_resume():
            params = json.loads(record["spec"]["properties"].get("hyperparameters") or "{}")
            self.sampler.next()  # the sample this trial took
            state = Trial(record["name"], int(record["name"].rsplit("_", 1)[1]), params)
            self.trials[state.name] = state
            if record["status"] == "Canceled" and not record["run_pid"]:
                state.never_ran = True
                self.rerun.append(params)
            self.active.append(state.name)
            if record["status"] not in ("NotStarted", "Queued", "Preparing"):
                self.slotted.add(state.name)
            if record["status"] in TERMINAL:
                continue
            state.run_dir = self.store.mlflow_run_dir(record["experiment_name"], state.name)
            state.values = [v for _, v, _ in filestore.metric_history(state.run_dir, self.metric)]
            state.evaluated = len(state.values)  # the lost orchestrator judged those intervals

    def _loop(self) -> None:
        while True:
            if self.cancel_requested:
                self.log("cancel requested: stopping the active trials")
                self._stop_active("Canceled: its sweep was canceled.")
                return self._conclude(forced=("Canceled", "Canceled by the user."))
            if time.monotonic() > self.deadline:
                timeout = self.limits["timeout"]
                self.log(f"limits.timeout ({timeout} s) reached: stopping the active trials")
                self._stop_active(f"Canceled: its sweep ran past limits.timeout ({timeout} s).")
                return self._conclude(
                    forced=(
                        "Canceled",
                        f"The sweep ran past limits.timeout ({timeout} s) and was canceled with its active trials.",
                    )
                )
            self._poll()
            self._fill()
            if not self.active and self.exhausted:
                return self._conclude()
            submission.reap_children()
            self.pause(POLL_S)

    # -- trials ------------------------------------------------------------------------------
    def _fill(self) -> None:
        self._open_slots()
        while self._wants_trial() and not self.exhausted and not self.cancel_requested:
            if self._counted() >= self.total:
                self.exhausted = True
                break
            params = self.rerun.pop(0) if self.rerun else self.sampler.next()
            if params is None:
                self.exhausted = True
                self.log(f"the search space is exhausted after {len(self.trials)} trial(s)")
                break
            self._submit(len(self.trials), params)
            self._open_slots()
        if self._counted() >= self.total:
            self.exhausted = True

    def _counted(self) -> int:
        """The trials that count toward max_total_trials (not those that never ran: see _resume)."""
        return sum(1 for t in self.trials.values() if not t.never_ran)

    def _open_slots(self) -> None:
        """Give slots to waiting trials, oldest first, while fewer than max_concurrent_trials run."""
        running = sum(1 for name in self.active if name in self.slotted)
        for name in self.active:
            if running >= self.concurrency:
                return
            if name not in self.slotted:
                open_trial_slot(self.store.job_dir(name))
                self.slotted.add(name)
                running += 1

    def _wants_trial(self) -> bool:
        """Whether to submit a trial now: a slot is free, or one is expected to free soon."""
        ahead = len(self.active) - self.concurrency  # submitted trials beyond the slots
        if ahead < 0:
            return True
        if not self.prepare_ahead:
            return False
        now = time.time()
        # a trial counts once past its own start-up: preparing the next one (about 50 ms of CPU) would
        # slow it on a small machine
        running = [self.trials[name].started_at for name in self.active if name in self.slotted]
        settled = [now - start for start in running if start and now - start >= SETTLE_S]
        if not self.run_times:  # no run time known yet: prepare the next wave once this one runs
            return ahead < self.concurrency and len(settled) == len(running)
        expected = statistics.median(self.run_times)
        return ahead < sum(1 for elapsed in settled if elapsed >= expected - PREPARE_AHEAD_S)

    def _submit(self, index: int, params: dict[str, Any]) -> None:
        spec, trial = self.spec, self.spec["trial"]
        name = f"{self.name}_{index}"
        env_vars = dict(trial["environment_variables"])
        env_vars.update({f"AZUREML_SWEEP_{k}": str(v) for k, v in params.items()})
        data = {
            "type": "command",
            "name": name,
            "display_name": name,
            "experiment_name": self.job["experiment_name"],
            "compute": spec["compute"],
            "command": render_search_space(trial["command"], params),
            "code": trial["code"],
            "environment": trial["environment"],
            "environment_variables": env_vars,
            "inputs": trial_inputs(spec, params),
            "outputs": {k: dict(v) for k, v in spec["outputs"].items()},  # a datastore path: each trial's ${{name}}
            "resources": trial["resources"],
            "distribution": trial.get("distribution"),
            "properties": {"hyperparameters": json.dumps(params)},
        }
        self._submit_child(data, Trial(name, index, params), _fmt_params(params))

    def _poll(self) -> None:
        trial_timeout = self.limits["trial_timeout"]
        for name in list(self.active):
            state = self.trials[name]
            record = lifecycle.get(self.store, name)
            state.status = record["status"]
            if name in self.slotted and record["status"] not in ("NotStarted", "Queued", "Preparing"):
                state.started_at = record["started_at"]  # a trial waiting at its gate has not started
            self._read_metric(state, record)
            if (
                trial_timeout
                and state.started_at
                and state.stop_reason is None
                and record["status"] not in TERMINAL
                and time.time() - state.started_at > trial_timeout
            ):
                self._stop(
                    state,
                    "limits.trial_timeout",
                    f"Canceled: the trial ran past the sweep's limits.trial_timeout ({trial_timeout} s).",
                )
            if record["status"] in TERMINAL:
                self._finished(state, record)

    def _read_metric(self, state: Trial, record: dict) -> None:
        if state.run_dir is None:
            state.run_dir = self.store.mlflow_run_dir(record["experiment_name"], state.name)
        if not state.parent_tagged and (state.run_dir / "tags").is_dir():
            (state.run_dir / "tags" / "mlflow.parentRunId").write_text(self.name)
            state.parent_tagged = True
        values = [value for _, value, _ in filestore.metric_history(state.run_dir, self.metric)]
        if len(values) <= len(state.values):
            return
        state.values = values
        if not self.policy or state.stop_reason is not None or record["status"] in TERMINAL:
            return
        histories = {t.name: t.values for t in self.trials.values() if t.values}
        for k in range(state.evaluated + 1, len(values) + 1):
            state.evaluated = k
            reason = decide(self.policy, self.goal, self.metric, state.name, histories, k)
            if reason:
                self._stop(state, POLICY_NAMES[self.policy["type"]], f"Early terminated by {reason}.")
                return

    def _stop(self, state: Trial, by: str, reason: str) -> None:
        state.stop_reason, state.stopped_by = reason, by
        self.log(f"trial {state.name} stopped: {reason}")
        lifecycle.cancel(self.store, state.name)

    def _finished(self, state: Trial, record: dict) -> None:
        self.active.remove(state.name)
        state.status, state.error = record["status"], record["error"]
        if record["status"] == "Completed" and record["started_at"]:
            self.run_times.append(record["ended_at"] - record["started_at"])
        state.values = [v for _, v, _ in filestore.metric_history(state.run_dir, self.metric)]
        if state.stop_reason and record["status"] == "Canceled":
            spec = record["spec"]
            if state.stopped_by in POLICY_NAMES.values():
                spec["properties"]["early_terminated_by"] = state.stopped_by
            else:
                spec["properties"]["canceled_by"] = state.stopped_by
            self.store.update_job(state.name, spec=spec, error=state.stop_reason)
            state.error = state.stop_reason
        elif state.stop_reason:  # it ended on its own before the stop landed
            state.stop_reason = state.stopped_by = None
        best = self._best_of(state.values)
        if record["status"] == "Completed" and best is not None:
            self.sampler.tell(state.index, best, "complete")
        elif state.stopped_by in POLICY_NAMES.values():
            self.sampler.tell(state.index, best, "pruned")
        else:
            self.sampler.tell(state.index, None, "failed")
        shown = (
            f"{self.metric}={best:.6g} (best of {len(state.values)} report(s))"
            if best is not None
            else f"no {self.metric} logged"
        )
        extra = f": {state.error.splitlines()[0]}" if record["status"] == "Failed" and state.error else ""
        self.log(f"trial {state.name} {record['status']}: {shown}{extra}")

    def _stop_active(self, reason: str) -> None:
        for name in list(self.active):
            state = self.trials[name]
            if state.stop_reason is None:
                state.stop_reason, state.stopped_by = reason, "sweep"
            lifecycle.cancel(self.store, name)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.active and time.monotonic() < deadline:
            self._poll()
            if self.active:
                time.sleep(POLL_S)

    # -- the end -------------------------------------------------------------------------------
    def _best_of(self, values: list[float]) -> float | None:
        if not values:
            return None
        return max(values) if self.goal == "maximize" else min(values)

    def _conclude(self, forced: tuple[str, str] | None = None) -> None:
        scored = [(self._best_of(t.values), t) for t in self.trials.values() if t.values]
        spec = self.store.get_job(self.name)["spec"]
        props = spec["properties"]
        props["primary_metric_config"] = json.dumps({"name": self.metric, "goal": self.goal})
        size = spaces.size(self.spec["search_space"])
        props["space_size"] = str(size) if size is not None else "infinite_space_size"
        props["total_trials"] = str(len(self.trials))
        if scored:
            sign = 1 if self.goal == "maximize" else -1
            score, best = max(scored, key=lambda pair: (sign * pair[0], -pair[1].index))
            props.update(
                best_child_run_id=best.name,
                score=str(score),
                best_metric_status="Succeeded",
                best_child_run_hyperparameters=json.dumps(best.params),
            )
            summary = f"best trial {best.name}: {self.metric}={score:.6g} ({_fmt_params(best.params)})"
        else:
            summary = None
        counts: dict[str, int] = {}
        for t in self.trials.values():
            key = "EarlyTerminated" if t.stopped_by in POLICY_NAMES.values() else t.status
            counts[key] = counts.get(key, 0) + 1
        tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        if forced:
            status, error = forced
        elif scored:
            status, error = "Completed", None
        elif self.trials and all(t.status == "Failed" for t in self.trials.values()):
            first = min(self.trials.values(), key=lambda t: t.index)
            status, error = (
                "Failed",
                (f"All {len(self.trials)} trial(s) failed. The first, {first.name}, failed with: {first.error}"),
            )
        else:
            logged = sorted(
                {
                    p.name
                    for t in self.trials.values()
                    if t.run_dir and (t.run_dir / "metrics").is_dir()
                    for p in (t.run_dir / "metrics").iterdir()
                }
            )
            status, error = (
                "Failed",
                (
                    f"No trial logged the primary metric '{self.metric}' (objective.primary_metric), so no trial can "
                    f"be ranked. The trials logged: {', '.join(logged) if logged else 'no metrics at all'}. Log it in "
                    f"the training script with mlflow.log_metric('{self.metric}', value), or fix primary_metric."
                ),
            )
        self.log(f"{len(self.trials)} trial(s): {tally}" if self.trials else "no trial was started")
        if summary:
            self.log(summary)
        self.log(f"sweep {status}" + (f": {error}" if error else ""))
        self.store.update_job(self.name, spec=spec)
        self._record_end(status, error)


if __name__ == "__main__":
    Orchestrator.main(sys.argv[1:])
