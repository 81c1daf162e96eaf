"""``data.svmlight`` subsection: how LETOR/SVMlight files become requests, and the click model that logs them.

LETOR data (MSLR-WEB10K, Yahoo LTR, Istella) has graded relevance labels but no logged pages. The adapter
(``world/letor.py``, docs/click-model.md) builds a world from the labels: per grade ``g`` an attractiveness
``click[g]`` (P(click | slot examined)), a satisfaction probability ``satisfaction[g]`` and a mean dwell time
``watch_seconds[g]``. The ``params.yaml`` values of ``click`` and ``satisfaction`` are the click and stop
probabilities of the "navigational" click model of the online learning-to-rank literature (Hofmann et al. 2013;
Oosterhuis and de Rijke 2018), for five grades 0..4.
"""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from dualrerank.config.base import Section, check


class SvmlightConfig(Section):
    train_file: str  # under data.path
    val_file: str | None  # None: the last data.val_fraction of the train file's queries
    test_file: str | None  # None: the last data.test_fraction of the train file's queries
    n_candidates: int  # top-N documents per query by the baseline score; queries with fewer are dropped
    baseline_feature: int  # 1-based feature id of the upstream score (MSLR: 110 = BM25 of the whole document)
    log_features: bool  # sign(x) log(1 + |x|) on every feature: a fixed map for heavy-tailed counts
    sessions_per_query: int  # logged sessions per train/val query (test queries are logged once)
    relevant_grade: int  # documents of grade >= this serve the query's intent
    intent_coverage: float  # beta: share of users satisfied by the viewport's coverage of the intent
    click: tuple[float, ...]  # P(click | examined) per grade
    satisfaction: tuple[float, ...]  # P(task done | clicked) per grade
    watch_seconds: tuple[float, ...]  # mean dwell given a click, per grade

    @model_validator(mode="after")
    def _check(self) -> Self:
        n = len(self.click)
        check(n >= 2, "data.svmlight.click needs one probability per grade (at least 2 grades)")
        same = len(self.satisfaction) == n and len(self.watch_seconds) == n
        check(same, "click, satisfaction and watch_seconds need one entry per grade (the same length)")
        check(all(0.0 < p < 1.0 for p in self.click), "click probabilities must be in (0, 1)")
        check(all(0.0 <= p <= 1.0 for p in self.satisfaction), "satisfaction probabilities must be in [0, 1]")
        check(all(w >= 0.0 for w in self.watch_seconds), "watch_seconds must be >= 0")
        check(1 <= self.relevant_grade < n, "relevant_grade must be a grade in 1 .. len(click) - 1")
        check(0.0 <= self.intent_coverage <= 1.0, "intent_coverage is a mixture weight in [0, 1]")
        check(self.n_candidates >= 2, "n_candidates must be >= 2")
        check(self.baseline_feature >= 1, "baseline_feature is a 1-based feature id")
        check(self.sessions_per_query >= 1, "sessions_per_query must be >= 1")
        return self

    @property
    def n_grades(self) -> int:
        return len(self.click)
