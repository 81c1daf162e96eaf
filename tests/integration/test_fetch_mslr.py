"""``fetch-mslr`` for real: the MSLR excerpts from the rankeval 0.8.2 sdist, when the package registry can be
reached (skipped, with the reason, when it cannot)."""

from __future__ import annotations

import numpy as np
import pytest

from dualrerank.data import mslr
from dualrerank.data.svmlight import read_svmlight


@pytest.mark.integration
def test_fetch_downloads_the_mslr_excerpts(tmp_path):
    if not mslr.registry_reachable():
        pytest.skip(f"package registry unreachable (`pip index versions rankeval` failed): no {mslr.PACKAGE}")
    paths = mslr.fetch_mslr(tmp_path / "mslr", root=tmp_path)
    for path in paths:
        f = read_svmlight(path)
        assert f.features.shape == (5000, 136)
        assert len(f.query_blocks()) == 43
        assert set(np.unique(f.label)) == {0, 1, 2, 3, 4}
