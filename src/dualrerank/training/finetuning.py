"""Streaming RL fine-tuning of a NAR student, as a library: the stream, the reward spec and one run.

The production stage ``finetune`` runs one LDRO run from its starting policy; the benchmark runs the same
function for GRPO, the learning-rate grid, seeds and the drifting stream. Nothing here reads ``params.yaml``
or touches the world: the caller passes configs, networks and tensors.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import lightning as L
import torch

from dualrerank.config.common import CommonConfig
from dualrerank.config.data import RewardWeights
from dualrerank.config.finetune import FinetuneConfig
from dualrerank.data.datamodule import TensorDictDataset, slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.data.targets import item_reward
from dualrerank.models.components import SlateInputs
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher, teacher_trajectories
from dualrerank.rewards import RewardSpec, build_reward_spec, drift_factor
from dualrerank.sampling import masked_sequential_argmax
from dualrerank.training.rl_module import PolicyLitModule
from dualrerank.training.trainer import build_stream_trainer

CHUNK = 512  # requests per forward pass outside training
SCALE_BUFFERS = ("ema_scale", "ema_ready", "ref_scale")  # LDRO's streaming scale, carried from run to run


@dataclass
class PolicyRun:
    """One pass over the stream: the policy, its probe curve (if probed) and its training time."""

    net: NARStudent
    module: PolicyLitModule
    curve: list[tuple[int, float]]  # (batches seen, normalised training reward on the probe requests)
    seconds: float

    @property
    def scale(self) -> dict[str, torch.Tensor]:
        """LDRO's streaming-scale state at the end of the run (EMA, readiness, reference scale)."""
        return {name: getattr(self.module, name).detach().clone() for name in SCALE_BUFFERS}


def reward_spec(
    reward: RewardWeights, cfg: FinetuneConfig, meta: SlateMeta, evaluator_meta: dict, viewport: int
) -> RewardSpec:
    """The hybrid reward's spec: the business objective (+ its prior rules) and fine-tuning's own components,
    resolved against the data's item features (recorded in model files)."""
    r = cfg.reward
    return build_reward_spec(
        reward, meta.item_features, evaluator_meta, viewport, r.evaluator, r.posterior, r.slot_decay
    )


def inputs(t: dict[str, torch.Tensor], a: int, b: int) -> SlateInputs:
    return SlateInputs.from_batch({k: v[a:b] for k, v in t.items()})


@torch.no_grad()
def stream_tensors(
    reward: RewardWeights,
    window: int,
    meta: SlateMeta,
    train: Slates,
    reference: NARStudent,
    teacher: ARTeacher,
) -> dict[str, torch.Tensor]:
    """The time-ordered stream: the newest ``window`` training requests with everything a step needs that does
    not depend on the policy (the teacher's lists and step logits for the KD anchor, the reference policy's
    logits for the KL term), computed once. ``reward_scale`` starts at ones (no drift)."""
    n = min(len(train), window)
    part = train.subset(slice(len(train) - n, len(train)))  # splits are time-ordered already
    t = slate_tensors(part, {"item_reward": item_reward(part, meta, reward.item)})
    t["trajectory"], t["teacher_logits"] = teacher_trajectories(teacher, t)
    t["ref_logits"] = torch.cat([reference(inputs(t, s, s + CHUNK)) for s in range(0, n, CHUNK)])
    return t


def drift_scales(spec: RewardSpec, n: int, component: str, factor: float, start: float, ramp: float) -> torch.Tensor:
    """``[n, R]`` reward-scale multipliers along a stream of ``n`` requests: ``component``'s scale ramps to
    ``factor`` from stream position ``start`` over ``ramp`` (shares of the stream); every other scale is 1."""
    if component not in spec.components:
        raise ValueError(f"drift component {component!r} is not one of {spec.components}")
    scales = torch.ones(n, len(spec.components))
    position = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    scales[:, spec.components.index(component)] = drift_factor(position, factor, start, ramp)
    return scales


def train_policy(
    start: NARStudent,
    evaluator: ListEvaluator,
    spec: RewardSpec,
    cfg: FinetuneConfig,
    common: CommonConfig,
    stream: dict[str, torch.Tensor],
    method: str,
    lr: float,
    seed: int,
    *,
    teacher: ARTeacher | None = None,
    probe: dict[str, torch.Tensor] | None = None,
    tracking: str = "",
    scale: dict[str, torch.Tensor] | None = None,
) -> PolicyRun:
    """One pass of ``method`` (``ldro`` | ``grpo``) over ``stream`` from a copy of ``start``; ``start`` is untouched.
    ``teacher`` is needed only as LDRO's KL reference (``ldro.kl_reference: teacher``); ``probe`` (validation
    tensors with ``upstream_page``) adds the normalised-reward curve every ``cfg.probe_every`` steps. ``scale``: LDRO's
    streaming-scale state to continue from (``PolicyRun.scale`` of an earlier run on the same stream)."""
    L.seed_everything(seed, verbose=False)
    stream.setdefault("reward_scale", torch.ones(len(stream["pad_mask"]), len(spec.components)))
    net = copy.deepcopy(start)
    kl_teacher = teacher if method == "ldro" and cfg.ldro.kl_reference == "teacher" else None
    module = PolicyLitModule(net, evaluator, spec, cfg, method, lr, kl_teacher, probe, seed)
    for name, value in (scale or {}).items():
        getattr(module, name).copy_(value)
    loader = torch.utils.data.DataLoader(TensorDictDataset(stream), batch_size=cfg.batch_size)
    t0 = time.perf_counter()
    trainer = build_stream_trainer(common, tracking, cfg.probe_every)
    trainer.fit(module, train_dataloaders=loader)
    return PolicyRun(net.cpu().eval(), module, module.curve, time.perf_counter() - t0)


@torch.no_grad()
def greedy_pages(net: NARStudent, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[R, K]`` the student's greedy lists of every request in ``tensors``."""
    out = []
    for s in range(0, len(tensors["pad_mask"]), CHUNK):
        x = inputs(tensors, s, s + CHUNK)
        out.append(masked_sequential_argmax(net(x), x.pad_mask))
    return torch.cat(out)
