"""Search spaces: Azure ML's parameter expressions, validated, and sampled at random or on a grid.

Each expression is a plain dict, as in the sweep YAML (``{"type": "uniform", "min_value": 0.1,
"max_value": 1}``). Values follow Azure ML's definitions:

=============  ======================================================================
choice         one of ``values``
randint        an integer in ``[0, upper)``
uniform        uniform in ``[min_value, max_value]``
quniform       ``round(uniform(min_value, max_value) / q) * q``
loguniform     ``exp(uniform(min_value, max_value))``: min and max are exponents
qloguniform    ``round(exp(uniform(min_value, max_value)) / q) * q``
normal         normal with mean ``mu`` and standard deviation ``sigma``
qnormal        ``round(normal(mu, sigma) / q) * q``
lognormal      ``exp(normal(mu, sigma))``
qlognormal     ``round(exp(normal(mu, sigma)) / q) * q``
=============  ======================================================================

q-expressions yield floats (``4.0``), as Azure's do. Random and Sobol sampling draw one
number in ``[0, 1)`` per parameter and map it through the expression's inverse CDF.
"""

from __future__ import annotations

import itertools
import math
import random
import warnings
from collections.abc import Iterator
from statistics import NormalDist
from typing import Any

from emulator.errors import NotEmulated, ValidationError

#: each expression type and its required fields
FIELDS: dict[str, tuple[str, ...]] = {
    "choice": ("values",),
    "randint": ("upper",),
    "uniform": ("min_value", "max_value"),
    "quniform": ("min_value", "max_value", "q"),
    "loguniform": ("min_value", "max_value"),
    "qloguniform": ("min_value", "max_value", "q"),
    "normal": ("mu", "sigma"),
    "qnormal": ("mu", "sigma", "q"),
    "lognormal": ("mu", "sigma"),
    "qlognormal": ("mu", "sigma", "q"),
}
DISCRETE = {"choice", "randint"}
_EPS = 1e-12


def _number(name: str, kind: str, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"search_space.{name} ({kind}): '{field}' must be a finite number; got {value!r}.")
    return value


def validate_expression(name: str, expr: Any) -> dict[str, Any]:
    """One parameter expression, checked; raises ValidationError naming the parameter and the fix."""
    if not isinstance(expr, dict) or "type" not in expr:
        raise ValidationError(
            f"search_space.{name} must be a parameter expression with a 'type' ({', '.join(FIELDS)}), "
            f"e.g. {{type: choice, values: [1, 2]}}; got {expr!r}."
        )
    kind = str(expr["type"]).lower()
    if kind not in FIELDS:
        raise ValidationError(
            f"search_space.{name} has unknown type '{expr['type']}'. Use one of: {', '.join(FIELDS)}."
        )
    wanted = FIELDS[kind]
    missing = [f for f in wanted if expr.get(f) is None]
    if missing:
        raise ValidationError(
            f"search_space.{name} ({kind}) needs {', '.join(missing)} (fields of {kind}: {', '.join(wanted)})."
        )
    unknown = set(expr) - set(wanted) - {"type"}
    if unknown:
        raise ValidationError(
            f"search_space.{name} ({kind}) has unknown field(s) {', '.join(sorted(unknown))}; "
            f"{kind} takes {', '.join(wanted)}."
        )
    out: dict[str, Any] = {"type": kind}
    if kind == "choice":
        values = expr["values"]
        if isinstance(values, range):
            values = list(values)
        if not isinstance(values, (list, tuple)) or not values:
            raise ValidationError(f"search_space.{name} (choice) needs a non-empty list of values; got {values!r}.")
        if any(isinstance(v, (dict, list)) for v in values):
            raise NotEmulated(
                f"nested search spaces (search_space.{name})",
                "Use a choice of plain values (numbers, strings, booleans).",
            )
        out["values"] = list(values)
        return out
    if kind == "randint":
        upper = expr["upper"]
        if (
            isinstance(upper, bool)
            or not isinstance(upper, int)
            and not (isinstance(upper, float) and upper.is_integer())
        ):
            raise ValidationError(f"search_space.{name} (randint): 'upper' must be an integer; got {upper!r}.")
        if upper < 1:
            raise ValidationError(
                f"search_space.{name} (randint): 'upper' is the exclusive upper bound of "
                f"[0, upper) and must be at least 1; got {upper}."
            )
        out["upper"] = int(upper)
        return out
    for field in wanted:
        out[field] = _number(name, kind, field, expr[field])
    if "min_value" in out and out["min_value"] >= out["max_value"]:
        hint = (
            " (loguniform bounds are exponents: the values lie in [exp(min_value), exp(max_value)])"
            if "log" in kind
            else ""
        )
        raise ValidationError(
            f"search_space.{name} ({kind}): min_value ({out['min_value']}) must be less than "
            f"max_value ({out['max_value']}){hint}."
        )
    if "sigma" in out and out["sigma"] <= 0:
        raise ValidationError(f"search_space.{name} ({kind}): sigma must be greater than 0; got {out['sigma']}.")
    if "q" in out and out["q"] <= 0:
        raise ValidationError(f"search_space.{name} ({kind}): q must be greater than 0; got {out['q']}.")
    if kind == "loguniform" or kind == "qloguniform":
        if out["max_value"] > 700:
            raise ValidationError(
                f"search_space.{name} ({kind}): max_value {out['max_value']} is an exponent "
                "(values lie in [exp(min_value), exp(max_value)]); exp of it overflows."
            )
    return out


def validate_space(space: Any) -> dict[str, dict[str, Any]]:
    """The whole ``search_space`` mapping, checked."""
    if not isinstance(space, dict) or not space:
        raise ValidationError(
            "The sweep needs a non-empty 'search_space': a mapping of hyperparameter names "
            "to parameter expressions, e.g. search_space: {C: {type: uniform, min_value: 0.1, "
            "max_value: 1}}."
        )
    out = {}
    for name, expr in space.items():
        if not isinstance(name, str) or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ValidationError(
                f"search_space name {name!r} is invalid: use letters, digits and '_', not starting with a digit."
            )
        out[name] = validate_expression(name, expr)
    return out


def qround(value: float, q: float) -> float:
    """``value`` rounded to a multiple of ``q`` (the q-distributions: quniform, qnormal, ...)."""
    return round(round(value / q) * q, 12)


def from_unit(expr: dict[str, Any], u: float) -> Any:
    """The value of ``expr`` at quantile ``u`` in [0, 1): how random and Sobol samples are drawn."""
    kind = expr["type"]
    if kind == "choice":
        values = expr["values"]
        return values[min(int(u * len(values)), len(values) - 1)]
    if kind == "randint":
        return min(int(u * expr["upper"]), expr["upper"] - 1)
    if "min_value" in expr:
        x = expr["min_value"] + u * (expr["max_value"] - expr["min_value"])
    else:
        x = NormalDist(expr["mu"], expr["sigma"]).inv_cdf(min(max(u, _EPS), 1 - _EPS))
    if kind.removeprefix("q").startswith("log"):
        x = math.exp(x)
    if kind.startswith("q"):
        x = qround(x, expr["q"])
    return float(x)


def is_finite(space: dict[str, dict[str, Any]]) -> bool:
    return all(expr["type"] in DISCRETE for expr in space.values())


def size(space: dict[str, dict[str, Any]]) -> int | None:
    """How many distinct points a discrete space has (None: infinite)."""
    if not is_finite(space):
        return None
    return math.prod(len(e["values"]) if e["type"] == "choice" else e["upper"] for e in space.values())


def _key(params: dict[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in params.items()))


class RandomSampler:
    """Random (or Sobol quasi-random) points; seeded, the same seed gives the same points.

    In a discrete space, points are not repeated and the sampler runs dry once every point
    has been drawn.
    """

    def __init__(self, space: dict[str, dict[str, Any]], seed: int | None = None, rule: str = "random"):
        self.space, self.rule = space, rule
        self.size = size(space)
        self.seen: set[str] = set()
        self.rng = random.Random(seed)
        self._sobol = None
        if rule == "sobol":
            from scipy.stats import qmc  # only sobol sampling needs scipy (~0.8 s at start)

            self._sobol = qmc.Sobol(d=len(space), scramble=True, seed=seed)

    def _units(self) -> list[float]:
        if self._sobol is not None:
            with warnings.catch_warnings():  # Sobol's balance warning: points are drawn one at a time
                warnings.simplefilter("ignore")
                return [float(u) for u in self._sobol.random(1)[0]]
        return [self.rng.random() for _ in self.space]

    def next(self) -> dict[str, Any] | None:
        """The next point, or None when a discrete space is exhausted."""
        if self.size is not None and len(self.seen) >= self.size:
            return None
        for _ in range(1000):
            params = {name: from_unit(expr, u) for (name, expr), u in zip(self.space.items(), self._units())}
            if self.size is None:
                return params
            key = _key(params)
            if key not in self.seen:
                self.seen.add(key)
                return params
        for params in grid(self.space):  # nearly exhausted: take the first point not yet drawn
            key = _key(params)
            if key not in self.seen:
                self.seen.add(key)
                return params
        return None

    def tell(self, index: int, value: float | None, state: str) -> None:
        """Random sampling ignores results."""


def grid(space: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every combination of the choices, the first parameter varying slowest."""
    names = list(space)
    axes = [space[n]["values"] if space[n]["type"] == "choice" else list(range(space[n]["upper"])) for n in names]
    for combo in itertools.product(*axes):
        yield dict(zip(names, combo))


class GridSampler:
    def __init__(self, space: dict[str, dict[str, Any]]):
        self.size = size(space)
        self._points = grid(space)

    def next(self) -> dict[str, Any] | None:
        return next(self._points, None)

    def tell(self, index: int, value: float | None, state: str) -> None:
        """Grid sampling ignores results."""
