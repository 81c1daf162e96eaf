"""Hybrid reward components on hand-checkable pages, the spec's round trip, and the judge's prior rules."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from dualrerank.data.schema import PAD_INDEX
from dualrerank.models.components import SlateInputs
from dualrerank.reranking import Judge
from dualrerank.rewards import (
    RewardSpec,
    below_relevance_floor,
    drift_factor,
    duplicates_in_viewport,
    evaluator_components,
    exposure_weights,
    hybrid_reward,
    kept_positive,
    prior_rule_scorer,
)

# five candidates; features: [author one-hot x3 | category one-hot x2 | relevance]
AUTHOR = [0, 1, 0, 2, 1]
CATEGORY = [0, 0, 1, 1, 1]
RELEVANCE = [5.0, 4.0, 3.0, 2.0, 1.0]


def inputs(pad_last: bool = False) -> SlateInputs:
    feats = torch.zeros(1, 5, 6)
    for i in range(5):
        feats[0, i, AUTHOR[i]] = 1.0
        feats[0, i, 3 + CATEGORY[i]] = 1.0
        feats[0, i, 5] = RELEVANCE[i]
    pad = torch.tensor([[False, False, False, False, pad_last]])
    score = torch.tensor([RELEVANCE]) * 0.1
    return SlateInputs(feats, torch.zeros(1, 0), score, torch.arange(1.0, 6.0)[None], pad)


def spec(**weights: float) -> RewardSpec:
    return RewardSpec(
        item_responses=("click", "watch_time"),
        page_responses=("satisfaction",),
        weights=weights,
        viewport=3,
        author_columns=(0, 1, 2),
        category_columns=(3, 4),
        relevance_column=5,
        relevance_quantile=0.5,
    )


def test_evaluator_components_sum_slots_and_keep_page_responses():
    item = torch.arange(12.0).reshape(1, 1, 3, 4)[..., :2]  # [B, G, K, L=2]: slots (0,1), (4,5), (8,9)
    page = torch.tensor([[[0.25]]])
    assert_close(evaluator_components(item, page), torch.tensor([[[12.0, 15.0, 0.25]]]))
    w = torch.tensor([1.0, 0.5, 0.0])
    assert_close(evaluator_components(item, page, w), torch.tensor([[[2.0, 3.5, 0.25]]]))


def test_exposure_weights_of_a_dual_column_feed():
    assert_close(exposure_weights(8, 4, 0.5), torch.tensor([1.0, 1, 1, 1, 0.5, 0.5, 0.25, 0.25]))


def test_duplicates_in_viewport_by_hand():
    x = inputs()
    author, category = x.item_features[..., :3], x.item_features[..., 3:5]
    pages = torch.tensor([[[0, 2, 1, 4], [0, 1, 3, 2], [1, 4, PAD_INDEX, PAD_INDEX]]])  # [B=1, G=3, K=4]
    # list 0: authors 0,0,1 in the viewport (3 slots) -> 1 duplicate; categories 0,1,0 -> 1
    # list 1: authors 0,1,2 -> 0; categories 0,0,1 -> 1; list 2: authors 1,1 -> 1; categories 0,1 -> 0
    assert duplicates_in_viewport(author, pages, 3).tolist() == [[1.0, 0.0, 1.0]]
    assert duplicates_in_viewport(category, pages, 3).tolist() == [[1.0, 1.0, 0.0]]
    assert duplicates_in_viewport(author, pages, 4).tolist() == [[2.0, 1.0, 1.0]]  # item 4 repeats author 1


def test_relevance_floor_is_per_request_and_ignores_padding():
    rel = torch.tensor([RELEVANCE])
    pages = torch.tensor([[[0, 3, 4], [4, 3, 2]]])
    no_pad = torch.zeros(1, 5, dtype=torch.bool)
    # the median of 5,4,3,2,1 is 3: items 3 (2.0) and 4 (1.0) are below it
    assert below_relevance_floor(rel, no_pad, pages, 3, 0.5).tolist() == [[2.0, 2.0]]
    # with item 4 padded the median of 5,4,3,2 is 3.5: item 2 (3.0) is below it too
    pad = torch.tensor([[False, False, False, False, True]])
    assert below_relevance_floor(rel, pad, pages[..., :2], 2, 0.5).tolist() == [[1.0, 2.0]]


def test_kept_positive_counts_observed_positives_in_the_viewport():
    item_reward = torch.tensor([[0.0, 2.0, 0.0, 0.5, 0.0]])
    pages = torch.tensor([[[1, 3, 0, 2], [0, 2, 1, 3], [4, PAD_INDEX, PAD_INDEX, PAD_INDEX]]])
    assert kept_positive(item_reward, pages, 2).tolist() == [[2.0, 0.0, 0.0]]


def test_hybrid_reward_columns_follow_the_active_components():
    x = inputs()
    s = spec(eval_watch_time=0.5, eval_click=0.0, dup_author=-1.0, below_floor=-0.2, kept_positive=0.3)
    assert s.components == ("eval_watch_time", "dup_author", "below_floor", "kept_positive")  # click weight 0: off
    pages = torch.tensor([[[0, 2, 1]]])
    item = torch.tensor([[[[0.1, 10.0], [0.2, 20.0], [0.3, 30.0]]]])
    page = torch.tensor([[[0.7]]])
    got = hybrid_reward(s, item, page, x, pages, torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]]))
    assert_close(got, torch.tensor([[[60.0, 1.0, 0.0, 1.0]]]))
    with pytest.raises(ValueError, match="logged feedback"):
        hybrid_reward(s, item, page, x, pages)


def test_spec_round_trip_and_errors():
    s = spec(eval_satisfaction=2.0, dup_category=-0.1)
    assert RewardSpec.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown reward components"):
        spec(eval_dwell=1.0)
    with pytest.raises(ValueError, match="author columns"):
        RewardSpec(("click",), (), {"dup_author": -1.0})


def test_prior_rule_scorer_is_the_weighted_prior_rules_and_plugs_into_the_judge():
    x = inputs()
    s = spec(eval_watch_time=1.0, dup_author=-1.0, dup_category=-0.5, kept_positive=5.0)
    scorer = prior_rule_scorer(s)
    assert scorer is not None
    pages = torch.tensor([[[0, 2, 1], [0, 1, 3]]])
    assert_close(scorer(x, pages), torch.tensor([[-1.0 - 0.5, -0.5]]))  # posterior rules are not in it
    assert prior_rule_scorer(spec(eval_watch_time=1.0)) is None

    class FlatEvaluator(torch.nn.Module):
        def eval(self):
            return self

        def utility_parts(self, x, pages, item_w, page_w):
            return torch.zeros(pages.shape), torch.zeros(pages.shape[:2])

    judge = Judge(FlatEvaluator(), torch.ones(2), torch.ones(1), scorer)  # type: ignore[arg-type]
    assert_close(judge.score(x, pages), torch.tensor([[-1.5, -0.5]]))


def test_drift_factor_ramps_like_the_world_drift():
    pos = torch.tensor([0.0, 0.4, 0.45, 0.5, 0.9])
    assert_close(drift_factor(pos, 5.0, 0.4, 0.1), torch.tensor([1.0, 1.0, 3.0, 5.0, 5.0]))
    assert_close(drift_factor(pos, 5.0, 0.4, 0.0), torch.tensor([1.0, 5.0, 5.0, 5.0, 5.0]))


def test_identity_groups_follow_the_rule_prefixes_and_skip_missing_identities():
    from dualrerank.config import replace
    from dualrerank.rewards import identity_groups
    from repo_params import repo_params

    rules = repo_params().data.reward.rules  # author_prefix feat_author_, category_prefix feat_cat_

    names = ["feat_author_0", "feat_cat_0", "feat_author_1", "feat_cat_1", "feat_quality"]
    assert identity_groups(names, rules) == [[0, 2], [1, 3]]
    assert identity_groups(names, replace(rules, author_prefix=None)) == [[1, 3]]
    assert identity_groups(["feat_quality"], rules) == []
