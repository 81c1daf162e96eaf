"""Stage ``finetune`` end to end on the tiny world, and a tiny seeded RL run that raises the evaluator reward."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dualrerank.config import params_from_dict
from dualrerank.data.datamodule import TensorDictDataset
from dualrerank.evaluation.evalset import judge_with_rules
from dualrerank.evaluation.policies import top_k
from dualrerank.models.components import SlateInputs
from dualrerank.models.encoder import SetEncoder
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.io import load_model
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.reranking import Judge
from dualrerank.rewards import RewardSpec
from dualrerank.sampling import masked_sequential_argmax
from dualrerank.stages import STAGES
from dualrerank.stages.runner import execute
from dualrerank.training.rl_module import PolicyLitModule
from dualrerank.training.trainer import build_stream_trainer

BEFORE = STAGES[: STAGES.index("finetune")]  # every stage fine-tuning reads from


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory, make_tiny_params) -> Path:
    root = tmp_path_factory.mktemp("finetune")
    (root / "params.yaml").write_text(yaml.safe_dump(make_tiny_params()))
    for stage in (*BEFORE, "finetune"):
        execute(stage, root=root, track=False)
    return root


@pytest.mark.integration
def test_explore_logs_a_round_of_student_pages_and_retrains_both_evaluators_on_their_half(finetuned):
    report = json.loads((finetuned / "data/reports/explore.json").read_text())
    n_train, M = 160, report["pages_per_request"]  # tiny_params: world.n_train_requests
    assert report["round"] is True and report["n_pages"] == n_train * M, report
    with np.load(finetuned / "data/explore/logs.npz") as z:
        assert z["page"].shape == (n_train * M, 6) and z["feedback"].shape[:2] == (n_train * M, 6)
        assert all(len(set(p)) == 6 for p in z["page"])  # a page never shows an item twice
        assert np.isin(z["page_feedback"], (0.0, 1.0)).all() and z["feedback"][..., 0].sum() > 0  # clicks logged
    logged = report["logged_per_page"]
    assert set(logged) == {"logging_policy", "student_round"} and logged["student_round"]["click"] > 0
    for role, share in (("evaluator", 0.5), ("evaluator_heldout", 0.5)):
        _, before = load_model(finetuned / f"data/models/{role}.ckpt")
        _, after = load_model(finetuned / f"data/models/{role}_explore.ckpt")
        # the same network on its own half of the requests, now with the round's pages as well
        same = {k: v for k, v in before["hparams"].items() if k != "item_scales"}  # scales: of the logs it saw
        assert {k: after["hparams"][k] for k in same} == same and after["meta"]["role"] == role
        assert before["meta"]["n_train_requests"] == int(n_train * share)
        assert after["meta"]["n_train_requests"] == int(n_train * share)  # whole requests, each with all its pages
        assert after["meta"]["n_train_pages"] == int(n_train * share) * (1 + M)
        w0, w1 = before["state_dict"], after["state_dict"]
        assert any(not torch.equal(w0[k], w1[k]) for k in w0)


@pytest.mark.integration
def test_finetune_is_one_ldro_run_from_the_distilled_student(finetuned):
    _, student = load_model(finetuned / "data/models/student.ckpt")
    net, record = load_model(finetuned / "data/models/student_ldro.ckpt")
    assert isinstance(net, NARStudent) and record["kind"] == "student" and record["hparams"] == student["hparams"]
    assert record["meta"]["method"] == "ldro" and record["meta"]["started_from"] == "distilled student"
    assert any(not torch.equal(student["state_dict"][k], v) for k, v in record["state_dict"].items())
    assert not (finetuned / "data/models/student_grpo.ckpt").exists()  # GRPO is the benchmark's
    spec = RewardSpec.from_dict(record["meta"]["reward_spec"])
    assert "eval_watch_time" in spec.components and "kept_positive" in spec.components
    # the Best-of-N judge rebuilds the prior rules from the file alone
    judge = judge_with_rules(Judge.from_file(finetuned / "data/models/evaluator.ckpt"), record["meta"])
    assert judge.rules is not None
    report = json.loads((finetuned / "data/reports/finetune.json").read_text())
    assert report["lr"] == 1e-3 and report["stream"] == {"requests": 48, "steps": 6, "batch_size": 8}
    assert [step for step, _ in report["probe_curve"]] == [0, 2, 4, 6]
    assert set(report["validation"]) == {"start", "finetuned"}
    assert set(report["validation"]["start"]) == {"evaluator_utility", "heldout_evaluator_utility"}


@pytest.mark.integration
def test_finetune_starts_from_the_champion_and_falls_back_without_one(finetuned, tmp_path):
    import shutil

    from dualrerank import registry
    from dualrerank.config import load_params, replace

    root = tmp_path / "project"
    shutil.copytree(finetuned, root)
    params = load_params(root / "params.yaml")
    streaming = replace(params, finetune=replace(params.finetune, init="champion"))
    execute("finetune", params=streaming, root=root, track=False)  # an empty registry: the distilled student
    report = json.loads((root / "data/reports/finetune.json").read_text())
    assert report["started_from"].startswith("distilled student (finetune.init=champion, but the registry has no")
    # a champion in the registry: the next run starts from its generator, and says which version
    models = root / "data/models"
    version = registry.register(params, models / "student_ldro.ckpt", models / "evaluator_explore.ckpt", {}, {}, root)
    registry.promote(params, version, root)
    execute("finetune", params=streaming, root=root, track=True)
    report = json.loads((root / "data/reports/finetune.json").read_text())
    assert report["started_from"] == f"champion version {version}"
    _, record = load_model(models / "student_ldro.ckpt")
    assert record["meta"]["started_from"] == f"champion version {version}"
    runs = registry.client(params, root).search_runs(
        [registry.client(params, root).get_experiment_by_name(params.common.mlflow_experiment).experiment_id],
        filter_string="tags.started_from != ''",
    )
    assert f"champion version {version}" in {r.data.tags["started_from"] for r in runs}
    latest = replace(params, finetune=replace(params.finetune, init="latest"))
    execute("finetune", params=latest, root=root, track=False)
    assert json.loads((root / "data/reports/finetune.json").read_text())["started_from"] == f"latest version {version}"


def tiny_problem(seed: int = 0) -> tuple[NARStudent, ListEvaluator, dict[str, torch.Tensor]]:
    """A random student and a random (but fixed) evaluator on random requests: the reward is a deterministic
    function of the list, so policy gradient must raise it."""
    torch.manual_seed(seed)
    B, N, K, F, Fc = 64, 8, 3, 4, 2
    student = NARStudent(SetEncoder(F, Fc, 16, 2, 1, 0.0), 16, 2, 1, K, 0.0)
    evaluator = ListEvaluator(F, Fc, ["binary"], ["binary"], [1.0], 16, 2, 1, K, dropout=0.0)
    pad = torch.zeros(B, N, dtype=torch.bool)
    pad[::4, -2:] = True
    t = {
        "item_features": torch.randn(B, N, F),
        "context": torch.randn(B, Fc),
        "upstream_score": torch.randn(B, N),
        "upstream_rank": torch.arange(1.0, N + 1).expand(B, N).clone(),
        "pad_mask": pad,
        "item_reward": torch.zeros(B, N),
    }
    with torch.no_grad():
        logits = student(SlateInputs.from_batch(t))
    t.update(
        ref_logits=logits,
        teacher_logits=logits,
        trajectory=masked_sequential_argmax(logits, pad),
        reward_scale=torch.ones(B, 2),
    )
    return student, evaluator, t


def mean_greedy_reward(module: PolicyLitModule, t: dict[str, torch.Tensor]) -> float:
    x = SlateInputs.from_batch(t)
    with torch.no_grad():
        pages = masked_sequential_argmax(module.net(x), x.pad_mask)[:, None]
        return float((module.rewards(x, pages, None) * module.reward_weights).sum(-1).mean())


@pytest.mark.integration
@pytest.mark.parametrize("method,kl_reference", [("ldro", "student"), ("ldro", "teacher"), ("grpo", "student")])
def test_tiny_seeded_run_raises_the_evaluator_reward(method, kl_reference, make_tiny_params):
    student, evaluator, t = tiny_problem()
    raw = make_tiny_params()
    raw["common"]["accelerator"] = "cpu"
    raw["finetune"].update(batch_size=16, group_size=8, ppo_epochs=2, probe_every=4)
    raw["finetune"]["ldro"]["kl_reference"] = kl_reference
    params = params_from_dict(raw)
    spec = RewardSpec(("click",), ("satisfaction",), {"eval_click": 1.0, "eval_satisfaction": 1.0}, viewport=2)
    # the KL reference "teacher": an AR teacher run along every sampled list (ARTeacher.forward_group)
    teacher = ARTeacher(SetEncoder(4, 2, 16, 2, 1, 0.0), 16, 2, 1, 3, 0.0) if kl_reference == "teacher" else None
    module = PolicyLitModule(student, evaluator, spec, params.finetune, method, lr=3e-3, teacher=teacher, seed=0)
    if teacher is not None:  # per sampled list and position, the teacher's logits along that list's prefix
        x, lists = SlateInputs.from_batch(t), torch.stack([t["trajectory"]] * 2, dim=1)
        torch.testing.assert_close(module.reference(t, x, lists)[:, 1], teacher(x, t["trajectory"]))
    before = mean_greedy_reward(module, t)
    stream = {k: v.repeat(5, *([1] * (v.dim() - 1))) for k, v in t.items()}  # 5 passes over the requests
    loader = torch.utils.data.DataLoader(TensorDictDataset(stream), batch_size=16)
    build_stream_trainer(params.common, "", log_every=4).fit(module, train_dataloaders=loader)
    after = mean_greedy_reward(module, t)
    assert after > before + 0.02, (before, after)
    if method == "ldro":  # the streaming scale was calibrated and kept in the module's buffers
        assert module.ema_ready.all() and (module.ref_scale > 0).all()
        assert {"ema_scale", "ema_ready", "ref_scale"} <= set(module.state_dict())


def test_probe_point_is_the_same_figure_in_chunks(monkeypatch, make_tiny_params):
    """The probe may be a whole validation split, so it runs in chunks; chunking must not change the figure:
    mean intended reward of the greedy lists over that of the upstream lists, on every probe request."""
    import dualrerank.training.rl_module as rl

    student, evaluator, t = tiny_problem()
    t["upstream_page"] = top_k(-t["upstream_rank"], t["pad_mask"], 3)
    params = params_from_dict(make_tiny_params())
    spec = RewardSpec(("click",), ("satisfaction",), {"eval_click": 1.0, "eval_satisfaction": 1.0}, viewport=2)
    module = PolicyLitModule(student, evaluator, spec, params.finetune, "ldro", lr=1e-3, probe=t, seed=0).eval()
    x = SlateInputs.from_batch(t)
    with torch.no_grad():
        pages = torch.stack([masked_sequential_argmax(student(x), x.pad_mask), t["upstream_page"]], dim=1)
        total = (module.rewards(x, pages, t["item_reward"]) * module.reward_weights).sum(-1).mean(0)
    for chunk in (64, 5):  # one pass, and 13 uneven chunks
        monkeypatch.setattr(rl, "PROBE_CHUNK", chunk)
        assert module.probe_point(0) == pytest.approx(float(total[0] / total[1]), rel=1e-6)
        assert torch.equal(module.probe_pages[-1], pages[:, 0])
