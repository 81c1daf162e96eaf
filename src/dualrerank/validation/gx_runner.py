"""Run in-code expectation lists on pandas frames through one quiet, ephemeral GX context.

Why ephemeral: the suite lives in code (``suite.py``), so nothing needs a ``gx/`` project directory,
and a validation run leaves no files behind. Why quiet: GX draws a tqdm bar per metric computation and
(in builds that ship it) sends analytics events; both are switched off so CI logs stay readable.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.datasource.fluent import PandasDatasource
    from great_expectations.expectations import Expectation


class GxRunner:
    """One ephemeral context with one pandas data source; each ``run`` adds a data-frame asset.

    GX is imported here, lazily, because importing it takes seconds and most CLI commands never
    validate anything.
    """

    def __init__(self) -> None:
        # Documented switch (docs.greatexpectations.io "Toggle analytics events"); setdefault keeps a
        # user's explicit choice. The context variable below covers contexts created before this.
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx = gx
        self.context: AbstractDataContext = gx.get_context(mode="ephemeral")
        self.context.enable_analytics(False)
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.source: PandasDatasource = self.context.data_sources.add_pandas("dualrerank")

    def run(
        self,
        name: str,
        frame: pd.DataFrame,
        expectations: list[Expectation],
        index_column: str | None = None,
        max_rows: int = 20,
    ) -> list[ExpectationValidationResult]:
        """Validate ``frame`` against ``expectations`` as one suite named ``name``.

        ``index_column`` is the column GX reports for each failing row (``request_id``); ``max_rows``
        caps how many failing rows GX returns per expectation (the count is always exact).
        """
        if not expectations:
            return []
        asset = self.source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
        result_format: dict[str, Any] = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": max_rows,
            # GX would otherwise build a pandas query string listing every failing row index
            "return_unexpected_index_query": False,
        }
        if index_column is not None:
            result_format["unexpected_index_column_names"] = [index_column]
        suite = self._gx.ExpectationSuite(name=name, expectations=expectations)
        return list(batch.validate(suite, result_format=result_format).results)
