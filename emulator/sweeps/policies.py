"""Early termination policies, decided on the trials' primary-metric histories.

As Azure ML defines them:

* An *interval* is one report of the primary metric: a trial's k-th ``mlflow.log_metric`` of it
  is interval k.
* A policy applies at interval k when k is a multiple of ``evaluation_interval`` (0 counts as 1)
  and k >= ``delay_evaluation``.
* A trial's *best metric at interval k* is the best of its first k reports (max when the goal is
  maximize, min when it is minimize).

At interval k, the trial is compared with every trial (running or finished, itself included)
that has reported at least k times:

* **BanditPolicy** stops it when its best metric is outside the slack of the best of theirs:
  below ``best / (1 + slack_factor)`` or ``best - slack_amount`` when maximizing; above
  ``best * (1 + slack_factor)`` or ``best + slack_amount`` when minimizing.
* **MedianStoppingPolicy** stops it when its best metric is worse than the median of their
  running averages (the mean of each one's first k reports).
* **TruncationSelectionPolicy** stops it when it is among the lowest ``truncation_percentage``
  percent of them by best metric at k: the ``floor(n * percentage / 100)`` worst of n, ties
  counting in the trial's favour (so a lone trial is never truncated).

``decide`` is pure: the orchestrator feeds it histories and cancels what it names.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

POLICY_NAMES = {
    "bandit": "BanditPolicy",
    "median_stopping": "MedianStoppingPolicy",
    "truncation_selection": "TruncationSelectionPolicy",
}


def applies_at(policy: dict[str, Any], k: int) -> bool:
    """Whether the policy is evaluated at interval ``k`` (1-based)."""
    every = int(policy.get("evaluation_interval") or 0) or 1
    return k >= 1 and k % every == 0 and k >= int(policy.get("delay_evaluation") or 0)


def _best(values: list[float], goal: str) -> float:
    return max(values) if goal == "maximize" else min(values)


def _worse(a: float, b: float, goal: str) -> bool:
    """Whether ``a`` is strictly worse than ``b``."""
    return a < b if goal == "maximize" else a > b


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def decide(
    policy: dict[str, Any], goal: str, metric: str, trial: str, histories: dict[str, list[float]], k: int
) -> str | None:
    """Whether ``trial`` is to stop at interval ``k``: the reason, or None to let it run.

    ``histories`` maps every trial of the sweep (``trial`` included) to the values of the primary
    metric it has reported so far, in order.
    """
    if not applies_at(policy, k) or len(histories.get(trial, [])) < k:
        return None
    peers = {name: values[:k] for name, values in histories.items() if len(values) >= k}
    mine = _best(peers[trial], goal)
    kind = policy["type"]
    where = f"{POLICY_NAMES[kind]} at interval {k}"
    if kind == "bandit":
        best = _best([_best(v, goal) for v in peers.values()], goal)
        factor, amount = float(policy.get("slack_factor") or 0), float(policy.get("slack_amount") or 0)
        if factor:
            limit = best / (1 + factor) if goal == "maximize" else best * (1 + factor)
            slack = f"slack_factor {_fmt(factor)}"
        else:
            limit = best - amount if goal == "maximize" else best + amount
            slack = f"slack_amount {_fmt(amount)}"
        if _worse(mine, limit, goal):
            return (
                f"{where}: best {metric} {_fmt(mine)} is outside the {slack} of the best trial's "
                f"{_fmt(best)} (limit {_fmt(limit)})"
            )
        return None
    if kind == "median_stopping":
        median = statistics.median(sum(v) / len(v) for v in peers.values())
        if _worse(mine, median, goal):
            return (
                f"{where}: best {metric} {_fmt(mine)} is worse than the median {_fmt(median)} of the "
                f"running averages of {len(peers)} trial(s)"
            )
        return None
    if kind == "truncation_selection":
        percentage = float(policy["truncation_percentage"])
        cut = math.floor(len(peers) * percentage / 100)
        better = sum(1 for name, v in peers.items() if name != trial and _worse(mine, _best(v, goal), goal))
        if cut and better >= len(peers) - cut:
            return (
                f"{where}: best {metric} {_fmt(mine)} is in the lowest {_fmt(percentage)}% "
                f"({cut} of {len(peers)} trials)"
            )
        return None
    raise ValueError(f"unknown early termination policy {kind!r}")
