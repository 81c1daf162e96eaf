"""Run-time overlays (``dualrerank run --overlay``): merged over params.yaml, checked like it, never used by
DVC; the MSLR overlay selects the LETOR source and leaves params.yaml's default run alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualrerank.cli import main
from dualrerank.config import ConfigError, load_params, merge

ROOT = Path(__file__).resolve().parents[2]


def test_merge_is_deep_for_mappings_and_replaces_everything_else():
    base = {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "b": [1, 2], "c": 3}
    over = {"a": {"y": {"q": 5}}, "b": [9]}
    assert merge(base, over) == {"a": {"x": 1, "y": {"p": 1, "q": 5}}, "b": [9], "c": 3}
    assert base["a"]["y"]["q"] == 2  # the base is not modified


def test_mslr_overlay_changes_only_what_it_lists():
    default = load_params(ROOT / "params.yaml")
    mslr = load_params(ROOT / "params.yaml", ROOT / "params.mslr.yaml")
    assert default.data.source == "world" and default.data.path is None
    assert mslr.data.source == "svmlight" and mslr.data.path == "data/raw/mslr"
    assert mslr.data.svmlight.train_file == "msn1.fold1.train.5k.txt"
    assert mslr.data.svmlight.click == default.data.svmlight.click  # not in the overlay: params.yaml's value
    assert mslr.train_teacher.net.d_model == 32 and mslr.train_teacher.optim.weight_decay == 1e-4
    assert mslr.world == default.world


def test_a_typo_in_an_overlay_names_the_overlay_and_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  svmlight:\n    n_candidate: 10\n")
    message = r"with overlay .*bad.yaml: params.data.svmlight: unknown key\(s\) \['n_candidate'\]"
    with pytest.raises(ConfigError, match=message):
        load_params(ROOT / "params.yaml", bad)


def test_overlays_stack_in_order(tmp_path):
    extra = tmp_path / "sessions.yaml"
    extra.write_text("data: {svmlight: {sessions_per_query: 20}}\ntrain_nar: {optim: {batch_size: 32}}\n")
    p = load_params(ROOT / "params.yaml", [ROOT / "params.mslr.yaml", extra])
    assert p.data.source == "svmlight" and p.data.svmlight.sessions_per_query == 20
    assert p.train_nar.optim.batch_size == 32 and p.train_nar.optim.max_epochs == 60  # the latter from mslr


def test_run_rejects_unknown_stages_before_running_anything(capsys):
    assert main(["--root", str(ROOT), "run", "generate", "trian_teacher"]) == 2
    assert "unknown stage(s) ['trian_teacher']" in capsys.readouterr().err
