"""Search-space sampling: every expression type, grid enumeration, seeds, bayesian sampling."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from emulator.errors import NotEmulated, ValidationError
from emulator.sweeps import space as spaces
from emulator.sweeps.bayesian import BayesianSampler

N = 2000


def draws(expr: dict, n: int = N, seed: int = 7) -> list:
    """``n`` random values of one expression (the way RandomSampler draws each parameter)."""
    expr = spaces.validate_expression("x", expr)
    rng = random.Random(seed)
    return [spaces.from_unit(expr, rng.random()) for _ in range(n)]


def test_choice_draws_every_value_and_only_them():
    values = draws({"type": "choice", "values": ["linear", "rbf", 3, 0.5]})
    assert set(values) == {"linear", "rbf", 3, 0.5}


def test_choice_accepts_a_range():
    assert spaces.validate_expression("x", {"type": "choice", "values": range(1, 5)})["values"] == [1, 2, 3, 4]


def test_randint_is_an_integer_in_zero_to_upper_exclusive():
    values = draws({"type": "randint", "upper": 5})
    assert set(values) == {0, 1, 2, 3, 4}
    assert all(isinstance(v, int) for v in values)


def test_uniform_stays_in_bounds_and_spreads():
    values = draws({"type": "uniform", "min_value": 0.5, "max_value": 2.5})
    assert all(0.5 <= v <= 2.5 for v in values)
    assert abs(statistics.mean(values) - 1.5) < 0.06
    assert min(values) < 0.6 and max(values) > 2.4


def test_quniform_rounds_to_multiples_of_q():
    values = draws({"type": "quniform", "min_value": 0, "max_value": 10, "q": 2.5})
    assert set(values) <= {0.0, 2.5, 5.0, 7.5, 10.0}
    assert {2.5, 5.0, 7.5} <= set(values)
    assert all(isinstance(v, float) for v in values)  # as Azure's q-expressions: floats


def test_loguniform_bounds_are_exponents_and_log_is_uniform():
    values = draws({"type": "loguniform", "min_value": -3, "max_value": 3})
    assert all(math.exp(-3) <= v <= math.exp(3) for v in values)
    logs = [math.log(v) for v in values]
    assert abs(statistics.mean(logs)) < 0.15  # uniform in [-3, 3]: mean 0
    assert sum(v < 1 for v in values) / N == pytest.approx(0.5, abs=0.05)


def test_qloguniform_rounds_the_exponential():
    values = draws({"type": "qloguniform", "min_value": 0, "max_value": 4, "q": 5})
    assert all(v % 5 == 0 for v in values)
    assert 0 <= min(values) and max(values) <= round(math.exp(4) / 5) * 5


def test_normal_has_its_mean_and_sigma():
    values = draws({"type": "normal", "mu": 10, "sigma": 3})
    assert statistics.mean(values) == pytest.approx(10, abs=0.25)
    assert statistics.stdev(values) == pytest.approx(3, abs=0.25)


def test_qnormal_rounds_to_q():
    values = draws({"type": "qnormal", "mu": 0, "sigma": 5, "q": 2})
    assert all(v % 2 == 0 for v in values)
    assert statistics.mean(values) == pytest.approx(0, abs=0.5)


def test_lognormal_log_is_normal():
    values = draws({"type": "lognormal", "mu": 1, "sigma": 0.5})
    assert all(v > 0 for v in values)
    logs = [math.log(v) for v in values]
    assert statistics.mean(logs) == pytest.approx(1, abs=0.05)
    assert statistics.stdev(logs) == pytest.approx(0.5, abs=0.05)


def test_qlognormal_rounds_the_exponential():
    values = draws({"type": "qlognormal", "mu": 2, "sigma": 0.5, "q": 1})
    assert all(v >= 0 and float(v).is_integer() for v in values)


def test_the_same_seed_gives_the_same_points_and_another_seed_others():
    space = spaces.validate_space(
        {
            "a": {"type": "uniform", "min_value": 0, "max_value": 1},
            "b": {"type": "choice", "values": [1, 2, 3]},
            "c": {"type": "lognormal", "mu": 0, "sigma": 1},
        }
    )
    one = [spaces.RandomSampler(space, seed=42).next() for _ in range(1)]
    first = spaces.RandomSampler(space, seed=42)
    second = spaces.RandomSampler(space, seed=42)
    other = spaces.RandomSampler(space, seed=43)
    a = [first.next() for _ in range(20)]
    assert a == [second.next() for _ in range(20)]
    assert a != [other.next() for _ in range(20)]
    assert a[0] == one[0]


def test_sobol_is_seeded_and_in_bounds():
    space = spaces.validate_space(
        {"a": {"type": "uniform", "min_value": 2, "max_value": 3}, "b": {"type": "randint", "upper": 4}}
    )
    first = [spaces.RandomSampler(space, seed=5, rule="sobol").next() for _ in range(1)]
    sampler = spaces.RandomSampler(space, seed=5, rule="sobol")
    points = [sampler.next() for _ in range(4)]
    assert points[0] == first[0]
    assert all(2 <= p["a"] <= 3 and p["b"] in range(4) for p in points)


def test_random_sampling_of_a_discrete_space_never_repeats_and_runs_dry():
    space = spaces.validate_space({"a": {"type": "choice", "values": [1, 2, 3]}, "b": {"type": "randint", "upper": 2}})
    sampler = spaces.RandomSampler(space, seed=1)
    points = [sampler.next() for _ in range(6)]
    assert len({(p["a"], p["b"]) for p in points}) == 6
    assert sampler.next() is None
    assert spaces.size(space) == 6


def test_grid_is_the_cartesian_product_in_order():
    space = spaces.validate_space(
        {"batch": {"type": "choice", "values": [16, 32]}, "layers": {"type": "choice", "values": [1, 2, 3]}}
    )
    sampler = spaces.GridSampler(space)
    points = []
    while (p := sampler.next()) is not None:
        points.append(p)
    assert points == [
        {"batch": 16, "layers": 1},
        {"batch": 16, "layers": 2},
        {"batch": 16, "layers": 3},
        {"batch": 32, "layers": 1},
        {"batch": 32, "layers": 2},
        {"batch": 32, "layers": 3},
    ]
    assert sampler.size == 6


@pytest.mark.parametrize(
    "expr, words",
    [
        ({"type": "uniform", "min_value": 2, "max_value": 1}, "min_value (2) must be less than max_value (1)"),
        ({"type": "uniform", "min_value": 1, "max_value": 1}, "must be less than"),
        ({"type": "loguniform", "min_value": 3, "max_value": -3}, "exponents"),
        ({"type": "quniform", "min_value": 0, "max_value": 1, "q": 0}, "q must be greater than 0"),
        ({"type": "qlognormal", "mu": 0, "sigma": 1, "q": -1}, "q must be greater than 0"),
        ({"type": "normal", "mu": 0, "sigma": 0}, "sigma must be greater than 0"),
        ({"type": "choice", "values": []}, "non-empty list"),
        ({"type": "randint", "upper": 0}, "at least 1"),
        ({"type": "uniform", "min_value": 0}, "needs max_value"),
        ({"type": "uniform", "min_value": "a", "max_value": 1}, "finite number"),
        ({"type": "gaussian", "mu": 0, "sigma": 1}, "unknown type 'gaussian'"),
        ({"type": "uniform", "min_value": 0, "max_value": 1, "q": 1}, "unknown field(s) q"),
    ],
)
def test_bad_ranges_are_refused_naming_the_parameter(expr, words):
    with pytest.raises(ValidationError) as err:
        spaces.validate_expression("lr", expr)
    assert "search_space.lr" in err.value.message and words in err.value.message


def test_nested_choices_are_not_emulated():
    with pytest.raises(NotEmulated):
        spaces.validate_expression("m", {"type": "choice", "values": [{"a": 1}]})


def test_bayesian_stays_in_the_space_and_learns():
    space = spaces.validate_space(
        {
            "x": {"type": "uniform", "min_value": -5, "max_value": 5},
            "q": {"type": "quniform", "min_value": 0, "max_value": 10, "q": 2},
            "k": {"type": "choice", "values": ["a", "b"]},
        }
    )
    sampler = BayesianSampler(space, "maximize", seed=3)
    scores = []
    for i in range(40):
        p = sampler.next()
        assert -5 <= p["x"] <= 5 and p["q"] in {0.0, 2.0, 4.0, 6.0, 8.0, 10.0} and p["k"] in ("a", "b")
        score = -((p["x"] - 2) ** 2) + (1 if p["k"] == "b" else 0)
        scores.append(score)
        sampler.tell(i, score, "complete")
    assert max(scores[20:]) > -0.5  # it finds x near 2
    assert statistics.mean(scores[20:]) > statistics.mean(scores[:10])
