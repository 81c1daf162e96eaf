"""The live loop's split of users between arms: deterministic, stable, in proportion."""

from __future__ import annotations

import numpy as np
import pytest

from dualrerank.live.arms import assign_arms, unit_hash


def test_a_user_keeps_one_arm_whatever_else_arrives():
    first = assign_arms(["u1", "u2", "u3"])
    later = assign_arms(["u9", "u3", "u1", "u2", "u3"])  # other users, other order, repeats
    assert later[2] == first[0] and later[3] == first[1] and later[1] == later[4] == first[2]
    assert unit_hash("u1", "arms") == unit_hash("u1", "arms") != unit_hash("u1", "other salt")


def test_arms_get_their_shares_of_many_users():
    arms = assign_arms(range(30000), ["control", "ldro", "grpo"], shares=[2, 1, 1])
    counts = {a: int((arms == a).sum()) for a in ("control", "ldro", "grpo")}
    assert abs(counts["control"] / 30000 - 0.5) < 0.01
    assert abs(counts["ldro"] / 30000 - 0.25) < 0.01 and abs(counts["grpo"] / 30000 - 0.25) < 0.01


def test_a_zero_share_gets_nobody_and_bad_shares_are_refused():
    arms = assign_arms(range(2000), ["control", "ldro"], shares=[0, 1])
    assert set(arms) == {"ldro"}
    assert isinstance(arms, np.ndarray)
    with pytest.raises(ValueError, match="share"):
        assign_arms(["u"], ["control", "ldro"], shares=[1])
    with pytest.raises(ValueError, match="share"):
        assign_arms(["u"], ["control"], shares=[0])
