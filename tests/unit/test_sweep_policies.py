"""Early termination decisions on synthetic primary-metric histories."""

from __future__ import annotations

import pytest

from emulator.sweeps.policies import applies_at, decide


def bandit(**kw):
    return {"type": "bandit", "evaluation_interval": 1, "delay_evaluation": 0, **kw}


@pytest.mark.parametrize(
    "policy, intervals",
    [
        ({"evaluation_interval": 1, "delay_evaluation": 0}, [1, 2, 3, 4, 5, 6]),
        (
            {"evaluation_interval": 0, "delay_evaluation": 0},
            [1, 2, 3, 4, 5, 6],
        ),  # the SDK's default 0 means every report
        ({"evaluation_interval": 2, "delay_evaluation": 0}, [2, 4, 6]),
        ({"evaluation_interval": 1, "delay_evaluation": 5}, [5, 6]),
        ({"evaluation_interval": 2, "delay_evaluation": 3}, [4, 6]),  # multiples of 2 that are >= 3
    ],
)
def test_when_a_policy_applies(policy, intervals):
    assert [k for k in range(1, 7) if applies_at(policy, k)] == intervals


def test_bandit_slack_factor_the_docs_example():
    # best 0.8 at interval 10, slack_factor 0.2: trials whose best is below 0.8 / 1.2 = 0.666 stop
    histories = {"best": [0.8] * 10, "low": [0.6] * 10, "ok": [0.67] * 10}
    policy = bandit(slack_factor=0.2, evaluation_interval=10)
    reason = decide(policy, "maximize", "accuracy", "low", histories, 10)
    assert reason and "BanditPolicy at interval 10" in reason and "0.666667" in reason
    assert decide(policy, "maximize", "accuracy", "ok", histories, 10) is None
    assert decide(policy, "maximize", "accuracy", "best", histories, 10) is None
    assert decide(policy, "maximize", "accuracy", "low", histories, 9) is None  # not an evaluation interval


def test_bandit_slack_amount_and_minimize():
    histories = {"a": [1.0, 0.5], "b": [1.0, 0.9], "c": [1.0, 0.7]}
    policy = bandit(slack_amount=0.3)
    assert decide(policy, "minimize", "loss", "b", histories, 2)  # 0.9 > 0.5 + 0.3
    assert decide(policy, "minimize", "loss", "c", histories, 2) is None  # 0.7 <= 0.8
    factor = bandit(slack_factor=0.5)
    assert decide(factor, "minimize", "loss", "b", histories, 2)  # 0.9 > 0.5 * 1.5
    assert decide(factor, "minimize", "loss", "c", histories, 2) is None


def test_bandit_compares_best_so_far_and_only_trials_that_reached_the_interval():
    histories = {"leader": [0.9, 0.95, 0.99], "slow": [0.5], "dip": [0.97, 0.3, 0.3]}
    policy = bandit(slack_factor=0.1)
    assert decide(policy, "maximize", "acc", "slow", histories, 1)  # 0.5 < 0.97 / 1.1
    assert decide(policy, "maximize", "acc", "dip", histories, 3) is None  # its best so far, 0.97, counts
    # at interval 2 only the trials with two reports count: a lone laggard is compared with itself
    assert decide(policy, "maximize", "acc", "slow", {"slow": [0.5, 0.5]}, 2) is None


def test_bandit_with_delay_leaves_early_intervals_alone():
    histories = {"good": [0.9] * 5, "bad": [0.1] * 5}
    policy = bandit(slack_factor=0.1, delay_evaluation=4)
    assert [k for k in range(1, 6) if decide(policy, "maximize", "m", "bad", histories, k)] == [4, 5]


def test_median_stopping_against_the_running_averages():
    policy = {"type": "median_stopping", "evaluation_interval": 1, "delay_evaluation": 0}
    histories = {"a": [0.2, 0.4, 0.6], "b": [0.3, 0.5, 0.7], "c": [0.1, 0.1, 0.1], "d": [0.5, 0.5, 0.5]}
    # running averages at interval 3: a 0.4, b 0.5, c 0.1, d 0.5 -> median 0.45
    assert decide(policy, "maximize", "m", "c", histories, 3)
    assert decide(policy, "maximize", "m", "a", histories, 3) is None  # its best, 0.6, beats 0.45
    assert "median 0.45" in decide(policy, "maximize", "m", "c", histories, 3)
    # minimize: a best 0.2 vs median of averages
    low = {"a": [0.2], "b": [0.9], "c": [1.0]}
    assert decide(policy, "minimize", "loss", "c", low, 1)
    assert decide(policy, "minimize", "loss", "a", low, 1) is None


def test_median_stopping_never_stops_a_lone_trial():
    policy = {"type": "median_stopping", "evaluation_interval": 1, "delay_evaluation": 0}
    assert decide(policy, "maximize", "m", "only", {"only": [0.1, 0.05]}, 2) is None


def test_truncation_selection_cuts_the_lowest_percentage():
    policy = {
        "type": "truncation_selection",
        "evaluation_interval": 1,
        "delay_evaluation": 0,
        "truncation_percentage": 40,
    }
    histories = {f"t{i}": [v] for i, v in enumerate([0.9, 0.8, 0.7, 0.6, 0.5])}  # floor(5 * 40%) = 2 cut
    stopped = [t for t in histories if decide(policy, "maximize", "acc", t, histories, 1)]
    assert stopped == ["t3", "t4"]
    stopped = [t for t in histories if decide(policy, "minimize", "loss", t, histories, 1)]
    assert stopped == ["t0", "t1"]


def test_truncation_selection_spares_small_groups_and_ties():
    policy = {
        "type": "truncation_selection",
        "evaluation_interval": 1,
        "delay_evaluation": 0,
        "truncation_percentage": 20,
    }
    four = {f"t{i}": [v] for i, v in enumerate([0.9, 0.8, 0.7, 0.6])}  # floor(4 * 20%) = 0
    assert not any(decide(policy, "maximize", "acc", t, four, 1) for t in four)
    tied = {f"t{i}": [0.5] for i in range(5)}
    assert not any(decide(policy, "maximize", "acc", t, tied, 1) for t in tied)
