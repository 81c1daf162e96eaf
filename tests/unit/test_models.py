"""Networks: shapes, padding invariance, permutation equivariance, decoding, self-describing files."""

from __future__ import annotations

import pytest
import torch

from dualrerank.models.components import PageView, SlateInputs
from dualrerank.models.io import build_model, load_model, save_model
from dualrerank.sampling import masked_sequential_argmax

B, N, F, C, K = 3, 7, 5, 4, 4
GEN_HP = dict(
    n_item_features=F, n_context_features=C, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, page_len=K, dropout=0.0
)
EVAL_HP = dict(
    n_item_features=F,
    n_context_features=C,
    item_kinds=["binary", "continuous"],
    page_kinds=["binary"],
    item_scales=[1.0, 20.0],
    d_model=16,
    n_heads=2,
    n_layers=1,
    page_len=K,
)


IDENTITY_GROUPS = [[0, 1], [2]]  # columns 0-1: an "author" embedding, column 2: a "category" code
GEN_VARIANTS = {
    "teacher": ("teacher", GEN_HP),
    "teacher_identity": ("teacher", {**GEN_HP, "identity_groups": IDENTITY_GROUPS}),
    "student": ("student", GEN_HP),
}


def inputs(seed: int = 0, n: int = N) -> SlateInputs:
    """Random requests in which candidates 1 and 3 share candidate 0's "author", 4 shares 2's "category"."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(B, n, F, generator=g)
    features[:, [1, 3], :2] = features[:, :1, :2]
    features[:, 4, 2] = features[:, 2, 2]
    return SlateInputs(
        features,
        torch.randn(B, C, generator=g),
        torch.randn(B, n, generator=g),
        torch.arange(1, n + 1).float().repeat(B, 1),
        torch.zeros(B, n, dtype=torch.bool),
    )


def pad(x: SlateInputs, extra: int) -> SlateInputs:
    """Append ``extra`` padded candidates with garbage features."""
    g = torch.Generator().manual_seed(99)
    return SlateInputs(
        torch.cat([x.item_features, 50 * torch.randn(B, extra, F, generator=g)], 1),
        x.context,
        torch.cat([x.upstream_score, torch.randn(B, extra, generator=g)], 1),
        torch.cat([x.upstream_rank, torch.zeros(B, extra)], 1),
        torch.cat([x.pad_mask, torch.ones(B, extra, dtype=torch.bool)], 1),
    )


@pytest.fixture(params=list(GEN_VARIANTS))
def generator(request):
    torch.manual_seed(0)
    kind, hp = GEN_VARIANTS[request.param]
    net = build_model(kind, hp).eval()
    if getattr(net, "identity_weight", None) is not None:
        with torch.no_grad():  # a trained-looking identity bias, not the zero init
            net.identity_weight.normal_()
    net.test_kind, net.test_hp = kind, hp
    return net


def logits_of(net, x, target=None):
    return net(x, target if target is not None else torch.arange(K).repeat(B, 1)) if hasattr(net, "greedy") else net(x)


def test_generator_logits_shape_and_padding_invariance(generator):
    x = inputs()
    out = logits_of(generator, x)
    assert out.shape == (B, K, N) and torch.isfinite(out).all()
    padded = logits_of(generator, pad(x, 3))
    torch.testing.assert_close(padded[..., :N], out, atol=1e-5, rtol=1e-5)


def test_encoder_is_permutation_equivariant(generator):
    x = inputs()
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(3))
    xp = SlateInputs(
        x.item_features[:, perm], x.context, x.upstream_score[:, perm], x.upstream_rank[:, perm], x.pad_mask[:, perm]
    )
    t, _ = generator.encoder(x)
    tp, _ = generator.encoder(xp)
    torch.testing.assert_close(tp, t[:, perm], atol=1e-5, rtol=1e-5)


def random_teacher(variant: str, seed: int, identity_std: float = 1.0):
    """A seeded random teacher; with identity groups, a non-zero identity bias of the given scale."""
    torch.manual_seed(seed)
    teacher = build_model("teacher", GEN_VARIANTS[variant][1]).eval()
    if teacher.identity_weight is not None:
        with torch.no_grad():
            teacher.identity_weight.normal_(std=identity_std)
    return teacher


@pytest.mark.parametrize("variant", ["teacher", "teacher_identity"])
def test_teacher_greedy_follows_its_own_argmax_and_beam_one_is_greedy(variant):
    teacher = random_teacher(variant, seed=1, identity_std=3.0)  # strong enough to change the decoded lists
    x = inputs(2)
    greedy = teacher.greedy(x)
    assert greedy.shape == (B, K) and all(len(set(row.tolist())) == K for row in greedy)
    # teacher forcing along the greedy list reproduces each step's argmax over the still-available items
    assert torch.equal(masked_sequential_argmax(teacher(x, greedy), x.pad_mask), greedy)
    assert torch.equal(teacher.beam(x, width=1), greedy)
    wide = teacher.beam(x, width=6)
    logp = lambda lists: torch.log_softmax(teacher(x, lists), -1)  # noqa: E731
    assert all(len(set(row.tolist())) == K for row in wide)
    assert wide.shape == (B, K) and torch.isfinite(logp(wide)).all()


@pytest.mark.parametrize("variant", ["teacher", "teacher_identity"])
def test_teacher_forward_group_matches_forward_on_every_list(variant):
    """The KL reference along G sampled lists: one encoding per request gives each list's teacher-forced logits."""
    teacher = random_teacher(variant, seed=2)
    x, G = pad(inputs(), 2), 3
    lists = torch.stack([torch.randperm(N)[:K] for _ in range(B * G)]).reshape(B, G, K)
    got = teacher.forward_group(x, lists)
    assert got.shape == (B, G, K, N + 2)
    for g in range(G):
        torch.testing.assert_close(got[:, g], teacher(x, lists[:, g]), atol=1e-5, rtol=1e-5)


def test_teacher_identity_bias_matches_a_loop_over_earlier_slots():
    """Step t adds sum_{s<t} W[t, s, g] to each candidate sharing identity g with the item on slot s; padded
    prefix entries add nothing."""
    torch.manual_seed(0)
    teacher = build_model("teacher", GEN_VARIANTS["teacher_identity"][1]).eval()
    with torch.no_grad():
        teacher.identity_weight.normal_()
    x = inputs()
    prefix = torch.tensor([[1, 4, 0], [2, 0, -1], [3, 5, 6]])
    same = teacher.encode(x)[3]  # [B, groups, N, N]
    got = teacher.identity_bias(same, prefix)
    want = torch.zeros(B, prefix.shape[1] + 1, N)
    for b in range(B):
        for t in range(prefix.shape[1] + 1):
            for s in range(t):
                item = int(prefix[b, s])
                if item < 0:
                    continue
                for gi, cols in enumerate(IDENTITY_GROUPS):
                    for i in range(N):
                        if torch.equal(x.item_features[b, i, cols], x.item_features[b, item, cols]):
                            want[b, t, i] += teacher.identity_weight[t, s, gi]
    torch.testing.assert_close(got, want)
    assert want[0, 1, 3] != 0 and want[0, 1, 5] == 0  # slot 0 holds item 1: item 3 shares its author, 5 nothing
    # a teacher without identity groups adds nothing, and has no new state (files of earlier versions load)
    plain = build_model("teacher", GEN_HP).eval()
    assert plain.identity_bias(plain.encode(x)[3], prefix).abs().sum() == 0
    assert not any(k.startswith("identity") for k in plain.state_dict())


def test_decoders_leave_empty_slots_when_fewer_candidates_than_slots(generator):
    x = inputs()
    x.pad_mask[0, 2:] = True  # request 0 has only two candidates
    pages = generator.greedy(x) if hasattr(generator, "greedy") else masked_sequential_argmax(generator(x), x.pad_mask)
    assert pages[0, :2].sort().values.tolist() == [0, 1] and pages[0, 2:].tolist() == [-1, -1]


def test_evaluator_outputs_and_empty_slots():
    torch.manual_seed(0)
    for arch in ("transformer", "bilstm"):
        ev = build_model("evaluator", {**EVAL_HP, "arch": arch}).eval()
        x = inputs()
        pages = torch.tensor([[[0, 1, 2, -1], [3, 2, 1, 0]]] * B)
        item, page = ev.expected(x, pages)
        assert item.shape == (B, 2, K, 2) and page.shape == (B, 2, 1)
        assert torch.all(item[:, 0, 3] == 0) and torch.all((item[..., 0] >= 0) & (item[..., 0] <= 1))
        assert torch.all(item[..., 1] >= 0)
        u = ev.utility(x, pages, torch.tensor([0.0, 1 / 60]), torch.tensor([2.0]))
        assert u.shape == (B, 2)


def test_evaluator_scores_each_list_alone_whichever_way_the_per_item_pathway_runs():
    """G lists scored in one pass (G*K > N: the per-item pathway runs per candidate) give what each list gets
    scored alone (G*K <= N: per slot), on every filled slot and page output; a list's score never depends on
    the others in the batch."""
    torch.manual_seed(0)
    ev = build_model("evaluator", {**EVAL_HP, "residual": True}).eval()
    with torch.no_grad():  # a trained-looking per-item pathway and slot bias, not the zero init
        ev.slot_bias.normal_()
    x = inputs()
    pages = torch.tensor([[[0, 1, 2, -1], [3, 2, 1, 0], [6, 5, 4, 3]]] * B)  # 3 lists x 4 slots > 7 candidates
    together_item, together_page = ev(x, pages)
    for g in range(pages.shape[1]):
        alone_item, alone_page = ev(x, pages[:, g : g + 1])
        filled = pages[:, g] >= 0
        torch.testing.assert_close(together_item[:, g][filled], alone_item[:, 0][filled])
        torch.testing.assert_close(together_page[:, g], alone_page[:, 0])


def test_evaluator_pair_terms_count_identity_matches_among_filled_slots():
    """With every weight zero but the identity inputs, slot i's pair output is gelu(w) times the number of other
    filled slots sharing its identity: empty slots and the slot itself never count."""
    from dualrerank.models.evaluator import PairInteractions

    pairs = PairInteractions(IDENTITY_GROUPS, d_model=16, page_len=K)
    with torch.no_grad():
        for p in pairs.parameters():
            p.zero_()
        pairs.pair_in.weight[0, 0] = 1.0  # hidden unit 0 <- same "author"
        pairs.pair_in.weight[1, 1] = 2.0  # hidden unit 1 <- same "category"
        pairs.out.weight[0, 0] = pairs.out.weight[1, 1] = 1.0
    x = inputs()
    pages = torch.tensor([[0, 1, 3, -1], [0, 2, 4, 1]])  # page 0: one author thrice (slot 3 empty)
    raw = x.item_features[0][pages.clamp_min(0)]
    out = pairs(PageView.slots(raw, torch.randn(2, K, 16), pages < 0))
    g1, g2 = torch.nn.functional.gelu(torch.tensor(1.0)), torch.nn.functional.gelu(torch.tensor(2.0))
    torch.testing.assert_close(out[0, :, 0], torch.tensor([2 * g1, 2 * g1, 2 * g1, 0.0]))
    torch.testing.assert_close(out[1, :, 0], torch.tensor([g1, 0.0, 0.0, g1]))  # items 0 and 1 share the author
    torch.testing.assert_close(out[1, :, 1], torch.tensor([0.0, g2, g2, 0.0]))  # items 2 and 4: the category
    assert torch.all(out[..., 2:] == 0)


def structure_probe(part: str):
    """A PageStructure on 4-slot pages with screens of 2 slots, every weight zero except ``part``'s path."""
    from dualrerank.models.evaluator import PageStructure

    ps = PageStructure(IDENTITY_GROUPS, d_model=16, n_out=2, page_len=K, viewport=2)
    with torch.no_grad():
        if part == "author":
            ps.pair_out.weight[0, 0] = -1.0 / ps.gain  # output 0 <- same "author" on the same screen
        elif part == "neighbour":
            ps.neighbour_out.weight[1] = 1.0 / ps.gain  # output 1 <- sum of the row neighbour's token
        elif part == "context":
            ps.context_out.weight.normal_()
    return ps


def test_page_structure_starts_at_zero_and_counts_same_screen_identities():
    x = inputs()
    pages = torch.tensor([[0, 1, 2, 4], [0, 2, 1, -1], [0, 2, 4, 3]])  # author pair 0/1 together, apart, 0/3 apart
    raw, tokens = x.item_features[0][pages.clamp_min(0)], torch.randn(3, K, 16)
    assert torch.all(structure_probe("none")(PageView.slots(raw, tokens, pages < 0)) == 0)
    out = structure_probe("author")(PageView.slots(raw, tokens, pages < 0))
    torch.testing.assert_close(out[0, :, 0], torch.tensor([-1.0, -1.0, 0.0, 0.0]))  # slots 0-1 share a screen
    torch.testing.assert_close(out[1, :, 0], torch.zeros(K))  # the same pair on slots 0 and 2: two screens
    torch.testing.assert_close(out[2, :, 0], torch.zeros(K))
    assert torch.all(out[..., 1] == 0)


def test_page_structure_reads_the_row_neighbour_and_the_item_before():
    x = inputs()
    pages = torch.tensor([[0, 1, 2, 3], [0, 1, 3, 2], [5, 1, 2, 3]])
    raw, tokens = x.item_features[0][pages.clamp_min(0)], torch.randn(1, N, 16)[0][pages]
    beside = structure_probe("neighbour")(PageView.slots(raw, tokens, pages < 0))[..., 1]
    torch.testing.assert_close(beside[:, 0], tokens[:, 1].sum(-1))  # slot 0 <- slot 1, and back
    torch.testing.assert_close(beside[:, 3], tokens[:, 2].sum(-1))
    context = structure_probe("context")(PageView.slots(raw, tokens, pages < 0))
    assert torch.all(context[:, 0] == 0)  # nothing before the first slot
    torch.testing.assert_close(context[0, :2], context[1, :2])  # slots 0-1 unchanged by swapping slots 2 and 3
    assert not torch.allclose(context[0, 2], context[1, 2])
    torch.testing.assert_close(context[0, 2:], context[2, 2:])  # a new item on slot 0: only slot 1 reads it
    assert not torch.allclose(context[0, 1], context[2, 1])


def test_pairwise_evaluator_scores_lists_alone_and_reloads(tmp_path):
    torch.manual_seed(0)
    hp = {**EVAL_HP, "residual": True, "pairwise": True, "identity_groups": IDENTITY_GROUPS, "structure": True}
    ev = build_model("evaluator", hp).eval()
    with torch.no_grad():
        ev.pairs.slot_pair.normal_()
        for p in (*ev.structure.parameters(), *ev.structure_page.parameters()):
            p.normal_()
    x = inputs()
    pages = torch.tensor([[[0, 1, 3, -1], [0, 2, 4, 1], [6, 5, 4, 3]]] * B)
    item, page = ev(x, pages)
    for g in range(3):
        alone_item, alone_page = ev(x, pages[:, g : g + 1])
        torch.testing.assert_close(item[:, g][pages[:, g] >= 0], alone_item[:, 0][pages[:, g] >= 0])
        torch.testing.assert_close(page[:, g], alone_page[:, 0])
    save_model(tmp_path / "e.ckpt", "evaluator", hp, ev)
    back, _ = load_model(tmp_path / "e.ckpt")
    torch.testing.assert_close(back(x, pages)[0], item)


def test_kmeans_finds_separated_groups_and_nearest_assigns_them():
    from dualrerank.models.components import kmeans, nearest

    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = centres.repeat_interleave(50, 0) + 0.3 * torch.randn(150, 2, generator=g)
    found = kmeans(points, 3, seed=1)
    order = nearest(centres, found)
    assert sorted(order.tolist()) == [0, 1, 2]  # one centroid per blob
    torch.testing.assert_close(found[order], centres, atol=0.15, rtol=0)
    torch.testing.assert_close(kmeans(points, 3, seed=1), found)  # deterministic in its seed
    assert torch.equal(nearest(points, found), order.repeat_interleave(50))
    with pytest.raises(ValueError, match="at least 3 points"):
        kmeans(points[:2], 3)


def test_group_coverage_is_a_noisy_or_over_the_first_screen():
    from dualrerank.models.evaluator import group_coverage

    groups = torch.tensor([[0, 1, 0, 2, 2]])
    engage = torch.tensor([[0.5, 0.2, 0.5, 1.0, 0.9]])
    filled = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    cov = group_coverage(groups, engage, filled, n_groups=4, viewport=3)
    # group 0 on two screen slots (1 - 0.5 * 0.5); group 1 once; group 2 only below the screen; group 3 never
    torch.testing.assert_close(cov, torch.tensor([[0.75, 0.2, 0.0, 0.0]]))
    cov4 = group_coverage(groups, engage, filled, n_groups=4, viewport=4)
    torch.testing.assert_close(cov4[0, 2], torch.tensor(1.0))
    filled[0, 0] = 0.0  # an empty slot serves nothing
    torch.testing.assert_close(group_coverage(groups, engage, filled, 4, 3)[0, 0], torch.tensor(0.5))


def test_page_structure_table_reads_the_groups_of_the_item_before_and_this_one():
    from dualrerank.models.evaluator import PageStructure

    ps = PageStructure([], d_model=16, n_out=2, page_len=K, viewport=2, n_groups=3)
    assert ps.table is not None
    with torch.no_grad():
        ps.table[1, 2, 0] = 1.0 / ps.gain  # group 2 right after group 1 raises output 0
    raw, tokens = torch.zeros(2, K, F), torch.randn(2, K, 16)
    groups = torch.tensor([[1, 2, 1, 2], [2, 1, 2, 1]])
    empty = torch.tensor([[False, False, False, True], [False] * K])
    out = ps(PageView.slots(raw, tokens, empty), groups)
    torch.testing.assert_close(out[0, :, 0], torch.tensor([0.0, 1.0, 0.0, 0.0]))  # slot 3 is empty
    torch.testing.assert_close(out[1, :, 0], torch.tensor([0.0, 0.0, 1.0, 0.0]))  # 1 -> 2 only at slots 1 -> 2
    assert torch.all(out[..., 1] == 0)
    empty[1, 1] = True  # nothing before slot 2 any more
    assert ps(PageView.slots(raw, tokens, empty), groups)[1, 2, 0] == 0
    with pytest.raises(ValueError, match="item group"):
        ps(PageView.slots(raw, tokens, empty))


def test_grouped_evaluator_fits_its_groups_scores_lists_alone_and_reloads(tmp_path):
    torch.manual_seed(0)
    hp = {**EVAL_HP, "residual": True, "structure": True, "group_columns": [3, 4], "n_groups": 3}
    hp |= {"pairwise": True, "identity_groups": IDENTITY_GROUPS}
    ev = build_model("evaluator", hp).eval()
    x = inputs()
    ev.fit_groups(x.item_features.reshape(-1, F), seed=0)
    assert ev.group_centroids.shape == (3, 2) and ev.group_centroids.abs().sum() > 0
    pages = torch.tensor([[[0, 1, 3, -1], [0, 2, 4, 1], [6, 5, 4, 3], [2, 3, -1, -1]]] * B)
    # four lists share their candidates' pair terms (4 * K * K slot pairs >= N * N candidate pairs); one list alone
    # computes its own: both ways must agree
    assert PageView.of(x.item_features, x.item_features, pages).rows.shape == (B, 4, K)
    assert PageView.of(x.item_features, x.item_features, pages[:, :1]).rows.shape == (B, 1, K)
    assert torch.equal(PageView.of(x.item_features, x.item_features, pages[:, :1]).raw[0, 1], x.item_features[0, 1])
    before = ev(x, pages)
    with torch.no_grad():
        ev.pairs.slot_pair.normal_()
        for p in (*ev.structure.parameters(), *ev.coverage_value.parameters()):
            p.normal_()
    item, page = ev(x, pages)
    assert not torch.allclose(page, before[1])  # the coverage term reaches the page outputs
    for g in range(pages.shape[1]):
        alone_item, alone_page = ev(x, pages[:, g : g + 1])
        torch.testing.assert_close(page[:, g], alone_page[:, 0])
        filled = pages[:, g] >= 0
        torch.testing.assert_close(item[:, g][filled], alone_item[:, 0][filled])
    save_model(tmp_path / "e.ckpt", "evaluator", hp, ev)
    back, _ = load_model(tmp_path / "e.ckpt")
    torch.testing.assert_close(back.group_centroids, ev.group_centroids)
    torch.testing.assert_close(back(x, pages)[1], page)
    plain = build_model("evaluator", {**hp, "structure": False})  # no structure: no groups, no coverage
    assert plain.n_groups == 0 and plain.coverage_value is None
    assert "group_centroids" not in plain.state_dict()  # files saved before groups existed still load


def test_model_files_reload_with_weights_only_and_identical_outputs(tmp_path, generator):
    x = inputs()
    kind = generator.test_kind
    save_model(tmp_path / "m.ckpt", kind, generator.test_hp, generator, {"note": "test"})
    back, record = load_model(tmp_path / "m.ckpt")
    assert record["kind"] == kind and record["meta"] == {"note": "test"}
    torch.testing.assert_close(logits_of(back, x), logits_of(generator, x))
    raw = torch.load(tmp_path / "m.ckpt", weights_only=True)  # plain containers and tensors only
    assert set(raw) == {"format", "kind", "hparams", "meta", "state_dict"}


def test_load_model_rejects_foreign_files(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a Dual-Rerank model file"):
        load_model(tmp_path / "other.pt")
