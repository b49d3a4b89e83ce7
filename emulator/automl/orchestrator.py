"""The AutoML orchestrator: runs one trial per (algorithm, setting) as child command jobs, picks the best.

Run as ``python -m emulator.automl.orchestrator <workspace-dir> <automl-job-name>`` (started by
:mod:`emulator.automl.service` as a sweep's orchestrator is). It

* plans the trials: the first setting of every selected algorithm, then the second ..., then
  settings sampled from each algorithm's search space, up to ``limits.max_trials`` (:func:`plan`);
* submits them as child command jobs ``<job>_0``, ``<job>_1`` ... on the job's cluster, at most
  ``limits.max_concurrent_trials`` at a time; each runs ``automl_trial.py``
  (:mod:`emulator.automl.trial`) and logs Azure's metrics with MLflow;
* cancels a trial past ``limits.trial_timeout_minutes``; stops starting trials once one reaches
  ``limits.exit_score``, or, with ``limits.enable_early_termination`` (the default), once the
  last 20 trials to end did not improve on the best score (Azure's rule); past ``limits.timeout_minutes``
  cancels the active trials and ends with
  the best finished one (as Azure ends an experiment that times out);
* ends ``Completed`` with ``best_child_run_id``, ``score``, ``run_algorithm`` and
  ``run_preprocessor`` in its properties, ``Failed`` when no trial produced the primary metric,
  ``Canceled`` on cancel;
* tags its own MLflow run as Azure's AutoML does (:func:`parent_run_tags`): ``automl_best_child_run_id``
  (where users look for the best trial with MLflow) and the per-trial summary ``iteration_000``,
  ``run_algorithm_000``, ``run_preprocessor_000``, ``score_000`` (``;``-joined, in the order trials ended).

Progress goes to the job's ``user_logs/std_log.txt``.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.automl.service import TRIAL_ENVIRONMENT, TRIAL_SCRIPT
from emulator.automl.trial import ALGORITHMS, SEARCH_SPACES
from emulator.jobs import lifecycle, submission
from emulator.jobs.orchestrator import ParentOrchestrator
from emulator.store import WorkspaceStore
from emulator.store.db import TERMINAL
from emulator.tracking import filestore

if TYPE_CHECKING:  # the record types cost start-up time at run time (see emulator.store.records)
    from emulator.store.records import AutoMLJobSpec  # noqa: F401 (named in a string: the generic base's type argument)

POLL_S = 0.1
#: Azure: with limits.enable_early_termination (the default), the job stops when the score has not
#: improved over the last 20 iterations
EARLY_TERMINATION_WINDOW = 20
#: what amlemu names the featurization in front of every algorithm (Azure names its scaler per trial)
PREPROCESSOR = "StandardScalerWrapper"


def plan(task: str, algorithms: list[str], max_trials: int) -> list[tuple[str, dict[str, Any]]]:
    """(algorithm, settings) per trial, up to ``max_trials``: every algorithm's first setting, then
    every second one ..., then settings sampled from each algorithm's search space in turn (seeded,
    so a job's plan is the same every time; no setting twice) until the spaces run out."""
    catalogue = ALGORITHMS[task]
    out: list[tuple[str, dict[str, Any]]] = []
    depth = max(len(catalogue[a]) for a in algorithms)
    for level in range(depth):
        out += [(a, catalogue[a][level]) for a in algorithms if level < len(catalogue[a])]

    def key(algorithm: str, settings: dict[str, Any]) -> tuple[str, str]:  # None: the estimator's default
        return algorithm, json.dumps({k: v for k, v in settings.items() if v is not None}, sort_keys=True)

    seen = {key(a, settings) for a, settings in out}
    rng = random.Random(f"amlemu-automl-{task}")
    spaces = {a: SEARCH_SPACES[task][a] for a in algorithms}
    sizes = {a: math.prod(len(values) for values in space.values()) for a, space in spaces.items()}
    left = [a for a in algorithms if sizes[a] > sum(1 for b, _ in seen if b == a)]
    while len(out) < max_trials and left:
        for algorithm in list(left):
            if len(out) >= max_trials:
                break
            for _ in range(50):  # a few draws find an unseen setting while the space is not nearly used up
                settings = {k: rng.choice(values) for k, values in spaces[algorithm].items()}
                if key(algorithm, settings) not in seen:
                    seen.add(key(algorithm, settings))
                    out.append((algorithm, settings))
                    break
            else:
                left.remove(algorithm)
    return out[:max_trials]


def parent_run_tags(best: str | None, ended: list[tuple[int, str, float]]) -> dict[str, str]:
    """The tags Azure's AutoML sets on its parent MLflow run: the best trial's name and, over the trials
    that ended with the primary metric (``(index, algorithm, score)`` in the order they ended), the
    ``;``-joined iteration, algorithm, preprocessor and score lists Azure records as ``*_000`` tags.
    No tags when no trial ended with the metric."""
    if not ended:
        return {}
    tags = {
        "iteration_000": ";".join(str(index) for index, _, _ in ended),
        "run_algorithm_000": ";".join(algorithm for _, algorithm, _ in ended),
        "run_preprocessor_000": ";".join(PREPROCESSOR for _ in ended),
        "score_000": ";".join(repr(score) for _, _, score in ended),
    }
    if best is not None:
        tags["automl_best_child_run_id"] = best
    return tags


def stalled(scores: list[float | None], goal: str, window: int) -> bool:
    """Whether none of the last ``window`` trials to end (``scores`` in the order they ended, None for
    a trial without the metric) improved on the best score before it."""
    best, since = None, 0
    for score in scores:
        if score is not None and (best is None or (score > best if goal == "maximize" else score < best)):
            best, since = score, 0
        else:
            since += 1
    return since >= window


@dataclass
class Trial:
    name: str
    index: int
    algorithm: str
    settings: dict[str, Any]
    status: str = "NotStarted"
    score: float | None = None
    error: str | None = None
    tagged: bool = False
    stopping: bool = False  # canceled by limits.trial_timeout_minutes


class AutoMLOrchestrator(ParentOrchestrator["AutoMLJobSpec"]):
    kind = "AutoML job"

    def __init__(self, store: WorkspaceStore, name: str):
        super().__init__(store, name)
        self.metric, self.goal = self.spec["primary_metric"], self.spec["goal"]
        self.limits = self.spec["limits"]
        self.stop_note: str | None = None  # why no more trials start (exit score, timeout, early termination)
        self.ended: list[Trial] = []  # the trials that ended, in the order they ended

    def _prepare(self) -> None:
        spec = self.spec
        self.start_tracking()
        self.plan = plan(spec["task"], spec["training"]["algorithms"], self.limits["max_trials"])
        self.concurrency = min(self.limits["max_concurrent_trials"], len(self.plan))
        self.deadline = time.monotonic() + 60.0 * self.limits["timeout_minutes"] - self.elapsed()
        self.log(
            f"AutoML {spec['task']} {self.name} on {spec['compute']}: {spec['goal']} {self.metric}; "
            f"{len(self.plan)} trial(s), {self.concurrency} at a time; algorithms: "
            f"{', '.join(spec['training']['algorithms'])}"
        )

    def _resume(self) -> None:
        """Take up the trials recorded before the orchestrator was lost: the plan is the same, those
        still running are watched, and those that ended are read as they ended (first poll)."""
        for record in self.children_to_resume():
            index = int(record["name"].rsplit("_", 1)[1])
            algorithm, settings = self.plan[index]
            self.trials[record["name"]] = Trial(record["name"], index, algorithm, settings)
            self.active.append(record["name"])

    def _loop(self) -> None:
        while True:
            if self.cancel_requested:
                self.log("cancel requested: stopping the active trials")
                self._stop_active("its AutoML job was canceled")
                return self._conclude(forced=("Canceled", "Canceled by the user."))
            if self.stop_note is None and time.monotonic() > self.deadline:
                self.stop_note = f"limits.timeout_minutes ({self.limits['timeout_minutes']}) reached"
                self.log(f"{self.stop_note}: stopping the active trials")
                self._stop_active("its AutoML job ran past limits.timeout_minutes")
            self._poll()
            if self.stop_note is None:
                while len(self.active) < self.concurrency and len(self.trials) < len(self.plan):
                    self._submit(len(self.trials))
            if not self.active and (self.stop_note or len(self.trials) >= len(self.plan)):
                return self._conclude()
            submission.reap_children()
            self.pause(POLL_S)

    def _submit(self, index: int) -> None:
        spec = self.spec
        algorithm, settings = self.plan[index]
        name = f"{self.name}_{index}"
        config = {
            k: spec[k]
            for k in (
                "task",
                "target_column_name",
                "weight_column_name",
                "primary_metric",
                "validation",
                "featurization",
            )
            if k in spec
        }
        config.update(
            algorithm=algorithm,
            settings=settings,
            enable_onnx_compatible_models=spec["training"]["enable_onnx_compatible_models"],
        )
        command = f"python {TRIAL_SCRIPT} --training_data ${{{{inputs.training_data}}}}"
        if "validation_data" in spec["inputs"]:
            command += " --validation_data ${{inputs.validation_data}}"
        data = {
            "type": "command",
            "name": name,
            "display_name": f"{name} {algorithm}",
            "experiment_name": self.job["experiment_name"],
            "compute": spec["compute"],
            "command": command,
            "code": str(self.dir / "trial_code"),
            "environment": TRIAL_ENVIRONMENT,
            "environment_variables": {"AMLEMU_AUTOML_TRIAL": json.dumps(config)},
            "inputs": {k: dict(v) for k, v in spec["inputs"].items()},
            "properties": {
                "run_algorithm": algorithm,
                "run_preprocessor": PREPROCESSOR,
                "hyperparameters": json.dumps(settings),
            },
        }
        self._submit_child(data, Trial(name, index, algorithm, settings), f"{algorithm} {json.dumps(settings)}")

    def _poll(self) -> None:
        trial_timeout = self.limits["trial_timeout_minutes"]
        for name in list(self.active):
            state = self.trials[name]
            record = lifecycle.get(self.store, name)
            run_dir = self.store.mlflow_run_dir(record["experiment_name"], name)
            if not state.tagged and (run_dir / "tags").is_dir():
                (run_dir / "tags" / "mlflow.parentRunId").write_text(self.name)
                state.tagged = True
            if (
                trial_timeout
                and record["started_at"]
                and record["status"] not in TERMINAL
                and not state.stopping
                and time.time() - record["started_at"] > 60.0 * trial_timeout
            ):
                state.stopping = True
                self.log(f"trial {name} ran past limits.trial_timeout_minutes ({trial_timeout}): canceling it")
                lifecycle.cancel(self.store, name)
            if record["status"] not in TERMINAL:
                continue
            self.active.remove(name)
            state.status, state.error = record["status"], record["error"]
            history = filestore.metric_history(run_dir, self.metric)
            state.score = history[-1][1] if history else None
            shown = f"{self.metric}={state.score:.6g}" if state.score is not None else f"no {self.metric}"
            self.log(
                f"trial {name} ({state.algorithm}) {state.status}: {shown}"
                + (f" ({state.error})" if state.error and state.status != "Completed" else "")
            )
            self.ended.append(state)
            if (
                self.limits.get("enable_early_termination", True)
                and self.stop_note is None
                and stalled([t.score for t in self.ended], self.goal, EARLY_TERMINATION_WINDOW)
            ):
                self.stop_note = (
                    f"early termination: {self.metric} did not improve over the last "
                    f"{EARLY_TERMINATION_WINDOW} trials (limits.enable_early_termination)"
                )
                self.log(f"{self.stop_note}: no more trials start")
            exit_score = self.limits["exit_score"]
            if (
                exit_score is not None
                and state.score is not None
                and self.stop_note is None
                and (state.score >= exit_score if self.goal == "maximize" else state.score <= exit_score)
            ):
                self.stop_note = f"trial {name} reached limits.exit_score ({exit_score})"
                self.log(f"{self.stop_note}: no more trials start")

    def _stop_active(self, reason: str) -> None:
        for name in list(self.active):
            self.log(f"trial {name} stopped: {reason}")
            lifecycle.cancel(self.store, name)
        deadline = time.monotonic() + 30.0
        while self.active and time.monotonic() < deadline:
            self._poll()
            time.sleep(POLL_S)

    def _conclude(self, forced: tuple[str, str] | None = None) -> None:
        scored = [t for t in self.trials.values() if t.score is not None and t.status == "Completed"]
        spec = self.store.get_job(self.name)["spec"]
        run_dir = self.store.mlflow_run_dir(self.job["experiment_name"], self.name)
        props = spec["properties"]
        props.update(primary_metric=self.metric, total_trials=str(len(self.trials)))
        if self.stop_note:
            props["stopped_because"] = self.stop_note
        if scored:
            sign = 1 if self.goal == "maximize" else -1
            best = max(scored, key=lambda t: (sign * t.score, -t.index))
            props.update(
                best_child_run_id=best.name,
                score=str(best.score),
                run_algorithm=best.algorithm,
                run_preprocessor=PREPROCESSOR,
                best_metric_status="Succeeded",
                model_path=f"azureml://jobs/{best.name}/outputs/artifacts/paths/outputs/",
            )
            best_run = self.store.mlflow_run_dir(self.job["experiment_name"], best.name)
            if (best_run / "metrics").is_dir():  # the parent run shows the best trial's metrics, as on Azure
                shutil.copytree(best_run / "metrics", run_dir / "metrics", dirs_exist_ok=True)
            self.log(
                f"best trial {best.name}: {best.algorithm} {json.dumps(best.settings)}, {self.metric}={best.score:.6g}"
            )
        if forced:
            status, error = forced
        elif scored:
            status, error = "Completed", None
        elif self.trials:
            first = min(self.trials.values(), key=lambda t: t.index)
            status, error = (
                "Failed",
                (
                    f"No trial produced the primary metric {self.metric}. The first, {first.name} "
                    f"({first.algorithm}), ended {first.status}: {first.error}"
                ),
            )
        else:
            status, error = "Failed", "No trial was started."
        if (run_dir / "tags").is_dir():  # not when the job failed before its run was made
            scored_in_order = [(t.index, t.algorithm, t.score) for t in self.ended if t in scored]
            filestore.set_tags(run_dir, parent_run_tags(props.get("best_child_run_id"), scored_in_order))
        self.log(f"AutoML job {status}" + (f": {error}" if error else ""))
        self.store.update_job(self.name, spec=spec)
        self._record_end(status, error)


if __name__ == "__main__":
    AutoMLOrchestrator.main(sys.argv[1:])
