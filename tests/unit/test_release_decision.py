"""The promotion rule of the ``release`` stage: the quality gate first, then a strict win over the champion."""

from __future__ import annotations

import pytest

from dualrerank.stages.release import decide

PASSED = {"passed": True, "checks": {"beats_upstream": {"value": 0.3, "threshold": 0.0, "passed": True}}}
FAILED = {
    "passed": False,
    "checks": {
        "beats_upstream": {"value": 0.3, "threshold": 0.0, "passed": True},
        "no_reward_hacking": {"value": 0.12, "threshold": 0.05, "passed": False},
    },
}


def test_without_a_gate_nothing_is_promoted():
    decision = decide(None, 2.0, None, 0.0, "true_utility")
    assert not decision.promote and "no quality_gate" in decision.reason


def test_a_failed_gate_names_exactly_the_failed_checks():
    decision = decide(FAILED, 2.0, 1.0, 0.0, "true_utility")
    assert not decision.promote
    assert decision.reason == "quality gate failed: no_reward_hacking = 0.12 (threshold 0.05)"


def test_the_first_candidate_past_the_gate_becomes_champion():
    assert decide(PASSED, 1.5, None, 0.0, "true_utility").promote


def test_a_candidate_without_the_metric_is_not_promoted():
    decision = decide(PASSED, None, 1.0, 0.0, "heldout_evaluator_utility")
    assert not decision.promote and "heldout_evaluator_utility" in decision.reason


@pytest.mark.parametrize(
    ("candidate", "champion", "margin", "promote"),
    [
        (1.1, 1.0, 0.0, True),
        (1.0, 1.0, 0.0, False),
        (0.9, 1.0, 0.0, False),
        (1.05, 1.0, 0.1, False),
        (1.2, 1.0, 0.1, True),
    ],
)
def test_the_candidate_must_beat_the_champion_by_more_than_the_margin(candidate, champion, margin, promote):
    decision = decide(PASSED, candidate, champion, margin, "true_utility")
    assert decision.promote is promote
    assert ("beats" if promote else "does not beat") in decision.reason


def test_release_checks_add_the_champion_check_to_the_gates():
    from dualrerank.stages.release import release_checks

    gate = {"passed": True, "checks": {"candidate_latency_ms_p99": {"value": 9.5, "threshold": 20.0, "rule": "<=",
                                                                    "passed": True}}}  # fmt: skip
    assert release_checks(gate, 1.80, None, 0.0) == gate["checks"]  # no comparable champion: nothing to add
    tie = release_checks(gate, 1.7646, 1.7646, 0.0)["candidate_gain_vs_champion"]
    assert tie == {"value": 0.0, "threshold": 0.0, "rule": ">", "passed": False}  # a tie keeps the champion
    assert release_checks(gate, 1.77, 1.76, 0.0)["candidate_gain_vs_champion"]["passed"] is True
    assert release_checks(None, None, 1.76, 0.0)["candidate_gain_vs_champion"]["passed"] is False
