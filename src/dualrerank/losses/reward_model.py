"""Losses of the list-wise evaluator beyond per-response regression (docs/judge.md, "Comparing pages of one request").

Best-of-N and RL ask the evaluator which of several pages of *one* request is best. Regression on single logged
pages spends most of its fit on what differs between requests (the user, the query, the candidates); the part
that differs between pages of one request is a small share of the variance. When the logs hold several pages of
the same request (the on-policy round shows several), the within-request term fits exactly that part.
"""

from __future__ import annotations

from torch import Tensor


def within_request_mse(predicted: Tensor, logged: Tensor, valid: Tensor) -> Tensor:
    """Mean squared error of the pages' utilities *centred within each request*.

    ``predicted [B, G]`` the evaluator's page utility, ``logged [B, G]`` the business reward of the logged feedback,
    ``valid [B, G]`` True for a page that was shown. Each row is centred on its own valid pages, so what remains is
    how each page differs from the request's other pages. Its minimiser is the expected reward's difference
    between pages: the feedback's noise is zero-mean given the page, so a consistent target even though every
    logged outcome is one random draw. Rows with fewer than two valid pages carry no comparison and are skipped;
    0 (in the graph) when no row has two.
    """
    v = valid.to(predicted.dtype)
    n = v.sum(1, keepdim=True)

    def centred(t: Tensor) -> Tensor:
        t = t.masked_fill(~valid, 0.0)
        return (t - t.sum(1, keepdim=True) / n.clamp(min=1)) * v

    err = (centred(predicted) - centred(logged)) ** 2
    rows = (n.squeeze(1) >= 2).to(predicted.dtype)
    per_row = err.sum(1) / n.squeeze(1).clamp(min=1)
    return (per_row * rows).sum() / rows.sum().clamp(min=1)
