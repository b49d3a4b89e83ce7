"""Pictures drawn on the server, as SVG geometry for the templates: a sweep's trials against its metric, a
pipeline's step graph. Both are small (trials and steps number in the tens), so the page carries them whole and
needs no script to show them; metric charts over steps, which can be long, are drawn in the browser instead.
"""

from __future__ import annotations

import math
import re
from typing import Any

WIDTH, HEIGHT, PAD = 580, 300, 56
_BINDING = re.compile(r"\$\{\{\s*parent\.jobs\.([A-Za-z0-9_]+)\.")


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _axis(values: list[Any]) -> tuple[Any, list[tuple[float, str]]]:
    """A function placing a value in [0, 1], and the ticks (position, label): linear, logarithmic when the values
    are positive and span more than two decades, or one slot per distinct value when they are not numbers."""
    if not _numeric(values):
        distinct = list(dict.fromkeys(str(v) for v in values))
        slot = {v: (i + 0.5) / len(distinct) for i, v in enumerate(distinct)}
        return (lambda v: slot[str(v)]), [(slot[v], v) for v in distinct]
    low, high = min(values), max(values)
    log = low > 0 and high / low > 100
    if log:
        low, high = math.log10(low), math.log10(high)
    span = (high - low) or 1.0

    def place(v: float) -> float:
        return ((math.log10(v) if log else v) - low) / span

    ticks = [(i / 4, _label(10 ** (low + span * i / 4) if log else low + span * i / 4)) for i in range(5)]
    return place, ticks


def _label(v: float) -> str:
    return f"{v:.3g}"


def scatter(trials: list[dict[str, Any]], x_param: str, metric: str, best: str | None) -> dict[str, Any] | None:
    """A sweep's trials as points: ``x_param``'s value across, the trial's best ``metric`` up; None when no
    trial has both. Each point names its trial; the best trial's is marked ``best``."""
    shown = [t for t in trials if t.get(f"best_{metric}") is not None and x_param in (t.get("hyperparameters") or {})]
    if not shown:
        return None
    place_x, x_ticks = _axis([t["hyperparameters"][x_param] for t in shown])
    place_y, y_ticks = _axis([t[f"best_{metric}"] for t in shown])
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def x(pos: float) -> float:
        return round(PAD + pos * inner_w, 1)

    def y(pos: float) -> float:
        return round(HEIGHT - PAD - pos * inner_h, 1)

    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "x_param": x_param,
        "metric": metric,
        "points": [
            {
                "trial": t["name"],
                "x": x(place_x(t["hyperparameters"][x_param])),
                "y": y(place_y(t[f"best_{metric}"])),
                "value": t[f"best_{metric}"],
                "param": t["hyperparameters"][x_param],
                "best": t["name"] == best,
            }
            for t in shown
        ],
        "x_ticks": [{"at": x(p), "label": label} for p, label in x_ticks],
        "y_ticks": [{"at": y(p), "label": label} for p, label in y_ticks],
    }


def _upstream(step: dict[str, Any]) -> set[str]:
    """The steps whose outputs ``step``'s inputs bind (``${{parent.jobs.<step>.outputs.<output>}}``)."""
    return {m for value in (step.get("inputs") or {}).values() for m in _BINDING.findall(str(value))}


def step_levels(steps: dict[str, dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A pipeline's steps in columns: a step sits one column right of the last step it reads an output of.
    Each step is its pipeline view (``status``, ``job_name``, ...) plus ``name`` and ``after`` (its upstream steps).
    """
    after = {name: sorted(_upstream(step) & set(steps)) for name, step in steps.items()}
    level: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in level:
            level[name] = 1 + max((depth(u, seen | {name}) for u in after[name] if u not in seen), default=-1)
        return level[name]

    columns: list[list[dict[str, Any]]] = []
    for name in steps:
        d = depth(name)
        while len(columns) <= d:
            columns.append([])
        columns[d].append({**steps[name], "name": name, "after": after[name]})
    return columns
