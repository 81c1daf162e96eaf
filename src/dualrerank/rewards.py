"""The hybrid reward vector of LDRO/GRPO and the prior-rule scorer of the Best-of-N judge (docs/method.md).

docs/method.md (the components; their definitions are ours): every sampled list ``pages [B, G, K]`` gets a reward
vector ``r [B, G, R]`` with one column per component, each a pure function of tensors:

* **evaluator** components ``eval_<response>``: the training evaluator's expected response, summed over slots for
  per-slot responses (optionally weighted by ``slot_decay`` per row below the viewport; the evaluator already sees
  each slot's embedding, so the default plain sum counts exposure once) and as is for page-level responses;
* **prior rules** (no feedback needed, so also usable at serving): ``dup_author`` / ``dup_category``, the number
  of viewport items whose author / category already occurs earlier in the viewport; ``below_floor``, the number
  of viewport items whose relevance (``upstream_score`` or a configured feature) is below the request's
  ``relevance_quantile`` among its candidates;
* **posterior rules** (logged feedback of this request, training only): ``kept_positive``, the number of items
  with positive observed reward that the list keeps in (or moves into) the viewport.

Signs live in the weights (``dup_author: -0.3`` means each duplicate costs 0.3 reward units). A component with
weight 0 is switched off. The held-out evaluator and the world's true utility are never used here.
Shapes: ``B`` requests, ``G`` lists per request, ``K`` slots, ``N`` candidates, ``R`` components.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from dualrerank.data.schema import PAD_INDEX
from dualrerank.models.components import SlateInputs, same_identity

if TYPE_CHECKING:  # only for annotations: rewards stay a torch-only module
    from dualrerank.config.data import RewardWeights, RuleConfig

PRIOR_RULES = ("dup_author", "dup_category", "below_floor")
POSTERIOR_RULES = ("kept_positive",)


def _gather(values: Tensor, pages: Tensor) -> Tensor:
    """``values [B, N, ...]`` at ``pages [B, G, K]`` -> ``[B, G, K, ...]`` (row 0's value on empty slots)."""
    B, G, K = pages.shape
    flat = pages.clamp_min(0).reshape(B, G * K)
    idx = flat.reshape(B, G * K, *([1] * (values.dim() - 2))).expand(B, G * K, *values.shape[2:])
    return values.gather(1, idx).reshape(B, G, K, *values.shape[2:])


def exposure_weights(K: int, viewport: int, decay: float) -> Tensor:
    """``[K]`` slot weights of a dual-column feed: 1 in the viewport, ``decay^(rows below it)`` after."""
    rows_after = (torch.arange(K) // 2 - viewport // 2 + 1).clamp_min(0)
    return torch.as_tensor(decay, dtype=torch.float32) ** rows_after


def evaluator_components(item_expected: Tensor, page_expected: Tensor, slot_weights: Tensor | None = None) -> Tensor:
    """``[B, G, L + P]``: per-slot expected responses ``[B, G, K, L]`` summed over slots (weighted by
    ``slot_weights [K]`` if given; empty slots hold 0), then the page responses ``[B, G, P]``."""
    item = item_expected if slot_weights is None else item_expected * slot_weights[:, None].to(item_expected)
    return torch.cat([item.sum(2), page_expected], dim=-1)


def duplicates_in_viewport(identity: Tensor, pages: Tensor, viewport: int) -> Tensor:
    """``[B, G]`` number of viewport items whose identity vector equals an earlier viewport item's.

    :param identity: ``[B, N, F]`` exact identity features (one-hot category, author embedding).
    """
    top = pages[..., :viewport]  # [B, G, V]
    ident = _gather(identity, top)  # [B, G, V, F]
    same = same_identity(ident)  # [B, G, V, V]
    filled = top != PAD_INDEX
    V = top.shape[-1]
    earlier = torch.ones(V, V, dtype=torch.bool, device=pages.device).tril(-1)  # [k, j]: j < k
    dup = (same & earlier & filled[..., None, :]).any(-1) & filled  # [B, G, V]
    return dup.sum(-1).to(identity.dtype)


def below_relevance_floor(relevance: Tensor, pad_mask: Tensor, pages: Tensor, viewport: int, quantile: float) -> Tensor:
    """``[B, G]`` number of viewport items whose ``relevance [B, N]`` is below the request's ``quantile`` of its
    valid candidates' relevance (a per-request floor, so the rule does not depend on the score's scale)."""
    floor = torch.nanquantile(relevance.masked_fill(pad_mask, float("nan")), quantile, dim=1)  # [B]
    top = pages[..., :viewport]
    low = (_gather(relevance, top) < floor[:, None, None]) & (top != PAD_INDEX)
    return low.sum(-1).to(relevance.dtype)


def kept_positive(item_reward: Tensor, pages: Tensor, viewport: int) -> Tensor:
    """``[B, G]`` number of items with positive observed reward (``item_reward [B, N]``, 0 where not shown) that
    the list places in the viewport (posterior rule: needs this request's logged feedback)."""
    top = pages[..., :viewport]
    pos = (_gather(item_reward, top) > 0) & (top != PAD_INDEX)
    return pos.sum(-1).to(item_reward.dtype)


@dataclass(frozen=True)
class RewardSpec:
    """Everything needed to rebuild the hybrid reward (and the judge's prior rules) from a model file.

    ``weights`` maps component names to their intended (undrifted) weights; zero-weight components are off.
    Column indices refer to the item features of the data the model was trained on.
    """

    item_responses: tuple[str, ...]  # evaluator per-slot responses, in the evaluator's output order
    page_responses: tuple[str, ...]  # evaluator page responses, in its output order
    weights: dict[str, float]
    viewport: int = 4
    slot_decay: float = 1.0  # evaluator aggregation over slots: 1 = plain sum
    author_columns: tuple[int, ...] = ()  # exact author identity columns (empty: rule off)
    category_columns: tuple[int, ...] = ()  # exact category identity columns (empty: rule off)
    relevance_column: int | None = None  # item-feature column of the relevance floor; None = upstream_score
    relevance_quantile: float = 0.2
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (e.g. feature names), not read here

    def __post_init__(self) -> None:
        known = set(self.evaluator_names) | set(PRIOR_RULES) | set(POSTERIOR_RULES)
        unknown = sorted(set(self.weights) - known)
        if unknown:
            raise ValueError(f"unknown reward components {unknown}; valid: {sorted(known)}")
        if "dup_author" in self.components and not self.author_columns:
            raise ValueError("dup_author has a weight but no author columns (set author_prefix or weight 0)")
        if "dup_category" in self.components and not self.category_columns:
            raise ValueError("dup_category has a weight but no category columns (set category_prefix or weight 0)")
        if not 0 <= self.relevance_quantile <= 1:
            raise ValueError(f"relevance_quantile must be in [0, 1], got {self.relevance_quantile}")

    @property
    def evaluator_names(self) -> tuple[str, ...]:
        return tuple(f"eval_{n}" for n in (*self.item_responses, *self.page_responses))

    @property
    def components(self) -> tuple[str, ...]:
        """Active component names (non-zero weight), in a fixed order: evaluator, prior, posterior."""
        order = (*self.evaluator_names, *PRIOR_RULES, *POSTERIOR_RULES)
        return tuple(n for n in order if self.weights.get(n, 0.0) != 0.0)

    @property
    def prior_components(self) -> tuple[str, ...]:
        return tuple(n for n in self.components if n in PRIOR_RULES)

    def weight_vector(self, names: Sequence[str] | None = None) -> Tensor:
        """``[R]`` weights of ``names`` (default: the active components)."""
        return torch.tensor([self.weights[n] for n in (names or self.components)], dtype=torch.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RewardSpec:
        tuples = ("item_responses", "page_responses", "author_columns", "category_columns")
        kwargs: dict[str, Any] = {k: tuple(v) if k in tuples else v for k, v in d.items()}
        return cls(**kwargs)


def identity_columns(item_features: Sequence[str], prefix: str | None) -> tuple[int, ...]:
    """Indices of the item features named ``prefix*`` (an exact identity: author, category); none for ``None``."""
    return () if prefix is None else tuple(i for i, n in enumerate(item_features) if n.startswith(prefix))


def identity_groups(item_features: Sequence[str], rules: RuleConfig) -> list[list[int]]:
    """The column groups of the identities the rules name (author, category) that the data have: the pair
    features of the evaluator and the AR teacher."""
    found = (identity_columns(item_features, p) for p in (rules.author_prefix, rules.category_prefix))
    return [list(c) for c in found if c]


def build_reward_spec(
    reward: RewardWeights,
    item_features: Sequence[str],
    evaluator_meta: dict[str, Any],
    viewport: int,
    evaluator_weights: dict[str, float] | None = None,
    posterior: dict[str, float] | None = None,
    slot_decay: float = 1.0,
) -> RewardSpec:
    """The reward spec of the business objective ``reward`` (``data.reward``: evaluator weights and prior rules),
    plus optional posterior rules, resolved against the data's ``item_features``.

    ``evaluator_weights`` overrides the evaluator part (response name -> weight; default: ``reward.item`` and
    ``reward.page``). A prior rule whose identity columns the data do not have (null prefix, or no feature
    with that prefix) is switched off and listed in ``extra["rules_off"]``.
    """
    responses = [*evaluator_meta["feedback"], *evaluator_meta["page_feedback"]]
    evaluator = {**reward.item, **reward.page} if evaluator_weights is None else evaluator_weights
    unknown = sorted(set(evaluator) - set(responses)) if evaluator_weights is not None else []
    if unknown:
        raise ValueError(f"evaluator reward weights name {unknown}; the evaluator predicts {responses}")
    weights = {f"eval_{k}": v for k, v in evaluator.items() if k in responses} | reward.prior | (posterior or {})
    rules, off = reward.rules, []

    def columns(prefix: str | None, rule: str) -> tuple[int, ...]:
        found = identity_columns(item_features, prefix)
        if not found and weights.get(rule, 0.0) != 0.0:  # the data have no such identity: the rule is off
            weights[rule] = 0.0
            off.append(rule)
        return found

    author, category = columns(rules.author_prefix, "dup_author"), columns(rules.category_prefix, "dup_category")
    feature = rules.relevance_feature
    if feature != "upstream_score" and feature not in item_features:
        raise ValueError(f"data.reward.rules.relevance_feature {feature!r} is not an item feature")
    return RewardSpec(
        item_responses=tuple(evaluator_meta["feedback"]),
        page_responses=tuple(evaluator_meta["page_feedback"]),
        weights=weights,
        viewport=viewport,
        slot_decay=slot_decay,
        author_columns=author,
        category_columns=category,
        relevance_column=None if feature == "upstream_score" else list(item_features).index(feature),
        relevance_quantile=rules.relevance_quantile,
        extra={
            "relevance_feature": feature,
            "author_prefix": rules.author_prefix,
            "category_prefix": rules.category_prefix,
            "rules_off": off,
        },
    )


def prior_rule_values(spec: RewardSpec, names: Sequence[str], x: SlateInputs, pages: Tensor) -> Tensor:
    """``[B, G, len(names)]`` values of prior rules ``names`` on lists ``pages [B, G, K]``."""
    out = []
    for name in names:
        if name == "dup_author":
            out.append(duplicates_in_viewport(x.item_features[..., list(spec.author_columns)], pages, spec.viewport))
        elif name == "dup_category":
            out.append(duplicates_in_viewport(x.item_features[..., list(spec.category_columns)], pages, spec.viewport))
        elif name == "below_floor":
            col = spec.relevance_column
            rel = x.upstream_score if col is None else x.item_features[..., col]
            out.append(below_relevance_floor(rel, x.pad_mask, pages, spec.viewport, spec.relevance_quantile))
        else:
            raise KeyError(f"unknown prior rule {name!r}; valid: {', '.join(PRIOR_RULES)}")
    B, G, _ = pages.shape
    return torch.stack(out, -1) if out else x.upstream_score.new_zeros(B, G, 0)


def hybrid_reward(
    spec: RewardSpec,
    item_expected: Tensor,
    page_expected: Tensor,
    x: SlateInputs,
    pages: Tensor,
    item_reward: Tensor | None = None,
) -> Tensor:
    """``[B, G, R]`` reward vector of lists ``pages [B, G, K]`` over ``spec.components``.

    :param item_expected, page_expected: the training evaluator's ``expected(x, pages)``.
    :param item_reward: ``[B, N]`` observed per-item reward of this request (posterior rules; training only).
    """
    slot_w = None
    if spec.slot_decay != 1.0:
        slot_w = exposure_weights(pages.shape[-1], spec.viewport, spec.slot_decay).to(item_expected.device)
    evaluator = dict(zip(spec.evaluator_names, evaluator_components(item_expected, page_expected, slot_w).unbind(-1)))
    prior = dict(zip(spec.prior_components, prior_rule_values(spec, spec.prior_components, x, pages).unbind(-1)))
    cols = []
    for name in spec.components:
        if name in evaluator:
            cols.append(evaluator[name])
        elif name in prior:
            cols.append(prior[name])
        else:  # kept_positive
            if item_reward is None:
                raise ValueError(f"component {name!r} needs the request's logged feedback (item_reward)")
            cols.append(kept_positive(item_reward, pages, spec.viewport))
    return torch.stack(cols, -1)


def prior_rule_scorer(spec: RewardSpec) -> Callable[[SlateInputs, Tensor], Tensor] | None:
    """The judge's additive rule score ``(x, pages [B, G, K]) -> [B, G]``: the weighted prior rules of ``spec``
    (no feedback needed, so it runs at serving). None when no prior rule has a weight."""
    names = spec.prior_components
    if not names:
        return None
    weights = spec.weight_vector(names)

    def score(x: SlateInputs, pages: Tensor) -> Tensor:
        values = prior_rule_values(spec, names, x, pages)
        return (values * weights.to(values)).sum(-1)

    return score


def drift_factor(position: Tensor, factor: float, start: float, ramp: float) -> Tensor:
    """Reward-scale drift along the stream [ours], like the world's watch-time drift:
    ``1 + (factor - 1) · clip((position - start) / ramp, 0, 1)`` for stream positions in [0, 1]."""
    t = ((position - start) / ramp).clamp(0.0, 1.0) if ramp > 0 else (position >= start).to(position.dtype)
    return 1.0 + (factor - 1.0) * t
