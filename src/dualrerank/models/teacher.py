"""AR teacher: a Seq2Slate-style pointer decoder over the candidate set (docs/method.md).

Step ``t`` reads BOS and the items chosen so far (causal self-attention), attends to the candidate
representations ``T`` (cross-attention) and scores every candidate with a pointer
``s_t(i) = <W_q h_t, W_k T_i> / sqrt(D)``. Logits are returned unmasked; masking of padded and
already-chosen items is the policy's job (``dualrerank.sampling``), so training and decoding share it.

Optional identity bias [ours]: with ``identity_groups`` (groups of item-feature columns that are an exact
identity, e.g. author, category), step ``t`` adds ``sum_g sum_{s<t} W[t, s, g] * same_g(chosen_s, i)`` to
candidate ``i``'s score: a learned bonus or penalty for repeating, on slot ``t``, the author or category of the
item on slot ``s``. It is the dependency a pointwise ranker cannot express and attention over a 4-d author
embedding learns poorly from a few thousand target lists (docs/targets.md).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dualrerank.data.schema import PAD_INDEX
from dualrerank.models.components import SlateInputs, gather_items, same_identity, transformer_layers
from dualrerank.models.encoder import SetEncoder


class ARTeacher(nn.Module):
    causal: Tensor

    def __init__(
        self,
        encoder: SetEncoder,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        page_len: int = 10,
        dropout: float = 0.1,
        identity_groups: list[list[int]] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.identity_groups = [list(g) for g in identity_groups or []]
        # [K, K, groups]: weight of "candidate repeats slot s's identity" at step t (only s < t is read); absent
        # without groups, so a teacher without the bias has the state of earlier versions and their files load
        self.identity_weight = (
            nn.Parameter(torch.zeros(page_len, page_len, len(self.identity_groups))) if self.identity_groups else None
        )
        self.page_len = page_len
        self.bos = nn.Parameter(torch.randn(d_model) * 0.02)
        self.pos = nn.Embedding(page_len, d_model)
        self.decoder = transformer_layers(d_model, n_heads, n_layers, dropout, decoder=True)
        self.norm = nn.LayerNorm(d_model)
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.register_buffer("causal", torch.triu(torch.full((page_len, page_len), float("-inf")), 1))

    def encode(self, x: SlateInputs) -> tuple[Tensor, ...]:
        """``(T [B, N, D], u [B, D], keys [B, N, D], same [B, groups, N, N])``: computed once per request,
        reused by every step; ``same[b, g, i, j]`` says candidates ``i`` and ``j`` share identity ``g``."""
        t, u = self.encoder(x)
        same = [same_identity(x.item_features[..., g]) for g in self.identity_groups]
        B, N = x.pad_mask.shape
        same_t = torch.stack(same, 1).to(t.dtype) if same else t.new_zeros(B, 0, N, N)
        return t, u, self.w_k(t), same_t

    def identity_bias(self, same: Tensor, prefix: Tensor) -> Tensor:
        """``[B, L + 1, N]``: at step ``t``, ``sum_g sum_{s<t} W[t, s, g] * same_g(prefix_s, i)`` per candidate."""
        B, G, N, _ = same.shape
        L = prefix.shape[1]
        if self.identity_weight is None or L == 0:
            return same.new_zeros(B, L + 1, N)
        rows = prefix.clamp_min(0)[:, None, :, None].expand(B, G, L, N)
        chosen = same.gather(2, rows) * (prefix >= 0)[:, None, :, None].to(same.dtype)  # [B, G, L(s), N]
        earlier = torch.ones(L + 1, L, dtype=torch.bool, device=same.device).tril(-1)  # [t, s]: s < t
        w = self.identity_weight[: L + 1, :L] * earlier[..., None]  # [L + 1, L, G]
        return torch.einsum("tsg,bgsn->btn", w, chosen)

    def step_logits(self, memory: tuple[Tensor, ...], pad_mask: Tensor, prefix: Tensor) -> Tensor:
        """Pointer logits ``[B, L + 1, N]`` for positions ``0..L`` given ``prefix [B, L]`` (teacher forcing)."""
        t, u, keys, same = memory
        B, L = prefix.shape
        chosen = gather_items(t, prefix[:, None, :])[:, 0]  # [B, L, D]
        tokens = torch.cat([self.bos.expand(B, 1, -1), chosen], dim=1)  # [B, L + 1, D]
        tokens = tokens + self.pos.weight[: L + 1] + u[:, None, :]
        h = self.decoder(tokens, t, tgt_mask=self.causal[: L + 1, : L + 1], memory_key_padding_mask=pad_mask)
        q = self.w_q(self.norm(h))
        return torch.einsum("bld,bnd->bln", q, keys) / math.sqrt(q.shape[-1]) + self.identity_bias(same, prefix)

    def forward(self, x: SlateInputs, target: Tensor) -> Tensor:
        """Teacher-forced logits ``[B, K, N]`` along ``target [B, K]`` (position k sees ``target[:, :k]``)."""
        return self.step_logits(self.encode(x), x.pad_mask, target[:, :-1])

    def forward_group(self, x: SlateInputs, lists: Tensor) -> Tensor:
        """Teacher-forced logits ``[B, G, K, N]`` along ``G`` lists per request (``lists [B, G, K]``), the same
        as :meth:`forward` on every list, with each request's candidate set encoded once instead of ``G`` times."""
        B, G, K = lists.shape
        memory = tuple(m.repeat_interleave(G, dim=0) for m in self.encode(x))
        prefix = lists.reshape(B * G, K)[:, :-1]
        return self.step_logits(memory, x.pad_mask.repeat_interleave(G, dim=0), prefix).reshape(B, G, K, -1)

    @torch.no_grad()
    def greedy(self, x: SlateInputs, k: int | None = None) -> Tensor:
        """``[B, K]`` greedy list: K sequential decoder passes, each picking the best available item."""
        return self.decode(x, k=k, temperature=0.0)

    @torch.no_grad()
    def decode(
        self, x: SlateInputs, k: int | None = None, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """``[B, K]`` list decoded step by step: greedy at temperature 0, else ancestral sampling."""
        k = k or self.page_len
        memory = self.encode(x)
        B = x.pad_mask.shape[0]
        prefix = torch.full((B, 0), PAD_INDEX, dtype=torch.long, device=x.pad_mask.device)
        taken = x.pad_mask.clone()
        for _ in range(k):
            logits = self.step_logits(memory, x.pad_mask, prefix)[:, -1].masked_fill(taken, float("-inf"))
            empty = taken.all(-1)
            if temperature > 0:
                probs = torch.softmax(logits.masked_fill(empty[:, None], 0.0) / temperature, -1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            else:
                nxt = logits.argmax(-1)
            nxt = nxt.masked_fill(empty, PAD_INDEX)
            prefix = torch.cat([prefix, nxt[:, None]], dim=1)
            taken = taken.scatter(1, nxt.clamp(min=0)[:, None], True) | empty[:, None]
        return prefix

    @torch.no_grad()
    def beam(self, x: SlateInputs, width: int = 4, k: int | None = None) -> Tensor:
        """``[B, K]`` best list by beam search on the teacher's log-likelihood (``width`` beams)."""
        k = k or self.page_len
        B, N = x.pad_mask.shape
        memory = tuple(m.repeat_interleave(width, 0) for m in self.encode(x))
        pad = x.pad_mask.repeat_interleave(width, 0)  # [B*W, N]
        prefix = torch.full((B * width, 0), PAD_INDEX, dtype=torch.long, device=pad.device)
        score = torch.zeros(B, width, device=pad.device)
        score[:, 1:] = float("-inf")  # start from a single beam
        taken = pad.clone()
        for _ in range(k):
            logp = torch.log_softmax(self.step_logits(memory, pad, prefix)[:, -1].masked_fill(taken, float("-inf")), -1)
            empty = taken.all(-1)
            logp = torch.where(empty[:, None], torch.zeros_like(logp), logp)  # exhausted: keep score once
            logp[:, 1:] = torch.where(empty[:, None], float("-inf"), logp[:, 1:])
            total = (score.reshape(-1, 1) + logp).reshape(B, width * N)
            best, idx = total.topk(width, dim=1)
            src = (idx // N) + torch.arange(B, device=pad.device)[:, None] * width  # [B, W] source beam rows
            nxt = (idx % N).reshape(-1)
            src = src.reshape(-1)
            nxt = torch.where(empty[src], torch.full_like(nxt, PAD_INDEX), nxt)
            prefix = torch.cat([prefix[src], nxt[:, None]], dim=1)
            taken = taken[src].scatter(1, nxt.clamp(min=0)[:, None], True) | empty[src][:, None]
            score = best
        return prefix.reshape(B, width, k)[:, 0]


@torch.no_grad()
def teacher_trajectories(
    teacher: ARTeacher, tensors: dict[str, torch.Tensor], batch: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy lists ``[R, K]`` of the teacher and its step logits along them ``[R, K, N]``."""
    lists, logits = [], []
    n = len(tensors["pad_mask"])
    for s in range(0, n, batch):
        x = SlateInputs.from_batch({k: v[s : s + batch] for k, v in tensors.items()})
        traj = teacher.greedy(x)
        lists.append(traj)
        logits.append(teacher(x, traj))
    return torch.cat(lists), torch.cat(logits)
