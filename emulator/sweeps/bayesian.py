"""Bayesian sampling, built on Optuna's TPE sampler (ask-and-tell, in memory).

Azure ML's bayesian sampling takes ``choice``, ``uniform`` and ``quniform`` only, has no seed
and no early termination; ``emulator.sweeps.spec`` enforces that before anything runs. Trials
that run at once are handled with TPE's "constant liar", so parallel asks do not all land on
the same point. ``quniform`` is searched as the continuous uniform and rounded to ``q`` after.
"""

from __future__ import annotations

from typing import Any

from emulator.sweeps.space import qround

SUPPORTED = ("choice", "uniform", "quniform")


class BayesianSampler:
    def __init__(self, space: dict[str, dict[str, Any]], goal: str, seed: int | None = None):
        # only bayesian sampling needs optuna (~0.2 s at start)
        import optuna
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.space = space
        self.size = None
        self.distributions = {}
        for name, expr in space.items():
            if expr["type"] == "choice":
                self.distributions[name] = CategoricalDistribution(expr["values"])
            else:
                self.distributions[name] = FloatDistribution(float(expr["min_value"]), float(expr["max_value"]))
        sampler = optuna.samplers.TPESampler(
            seed=seed, constant_liar=True, n_startup_trials=min(10, max(2, 2 * len(space)))
        )
        self.study = optuna.create_study(direction="maximize" if goal == "maximize" else "minimize", sampler=sampler)
        self._count = 0
        self._asked: dict[int, Any] = {}  # the index of the point (0, 1, ...) -> its optuna trial

    def next(self) -> dict[str, Any] | None:
        trial = self.study.ask(self.distributions)
        params = {}
        for name, expr in self.space.items():
            value = trial.params[name]
            params[name] = qround(value, expr["q"]) if expr["type"] == "quniform" else value
        self._asked[self._count] = trial
        self._count += 1
        return params

    def tell(self, index: int, value: float | None, state: str) -> None:
        """Report the result of the ``index``-th point: ``complete`` (with its value), ``pruned`` or ``failed``."""
        trial = self._asked.pop(index, None)
        if trial is None:
            return
        states = self._optuna.trial.TrialState
        if state == "complete" and value is not None:
            self.study.tell(trial, value)
        elif state == "pruned":
            self.study.tell(trial, state=states.PRUNED)
        else:
            self.study.tell(trial, state=states.FAIL)
