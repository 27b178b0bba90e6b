import math

import pytest
import torch
from torch import nn

from adarank.errors import AdaRankError
from adarank.probes import ProbeBatch
from adarank.scoring import ScoreConfig, score_modules
from adarank.targets import select_targets

from conftest import assert_state_equal, random_probes, state_copy

MODELS = ["tiny_bert", "tiny_gpt2", "tiny_llama"]


def _probes_for(model):
    return random_probes(model.config.vocab_size, token_types=model.config.model_type == "bert")


def _means(results):
    return torch.tensor([r.mean for r in results], dtype=torch.float64)


@pytest.mark.parametrize("fixture", MODELS)
@pytest.mark.parametrize("compare", ["pair", "clean"])
def test_scores_finite_nonnegative_and_deterministic(fixture, compare, request):
    model = request.getfixturevalue(fixture)
    probes = _probes_for(model)
    cfg = ScoreConfig(trials=3, compare=compare, seed=7)
    first, choice = score_modules(model, probes, "all-linear", cfg, progress=False)
    again, _ = score_modules(model, probes, "all-linear", cfg, progress=False)
    other, _ = score_modules(model, probes, "all-linear", ScoreConfig(trials=3, compare=compare, seed=8), progress=False)
    assert choice == ("mean" if fixture == "tiny_bert" else "logits")
    for r in first:
        assert len(r.scores) == 3
        assert all(math.isfinite(s) and s > 0 for s in r.scores)
        assert r.std >= 0
    assert [r.scores for r in first] == [r.scores for r in again]  # bit for bit
    assert [r.scores for r in first] != [r.scores for r in other]


@pytest.mark.parametrize("fixture", MODELS)
def test_batched_engine_matches_naive(fixture, request):
    """Same noise draws; the batched engine adds x·E^T beside x·W^T instead of x·(W+E)^T, so the
    results agree to fp32 rounding (relative 1e-4 here; observed ~1e-6)."""
    model = request.getfixturevalue(fixture)
    probes = _probes_for(model)
    naive, _ = score_modules(model, probes, "all-linear", ScoreConfig(trials=2, engine="naive"), progress=False)
    for replay in (True, False):
        fast, _ = score_modules(model, probes, "all-linear",
                                ScoreConfig(trials=2, engine="batched", prefix_replay=replay), progress=False)
        for a, b in zip(fast, naive):
            assert a.target.name == b.target.name
            assert a.scores == pytest.approx(b.scores, rel=1e-4)


def test_chunking_does_not_change_scores(tiny_bert):
    probes = _probes_for(tiny_bert)
    whole, _ = score_modules(tiny_bert, probes, ["value"], ScoreConfig(trials=3), progress=False)
    small, _ = score_modules(tiny_bert, probes, ["value"], ScoreConfig(trials=3, max_batch=4), progress=False)
    for a, b in zip(whole, small):
        assert a.scores == pytest.approx(b.scores, rel=1e-5)


def test_padding_never_counts(tiny_bert):
    """A short example padded next to a long one scores as it does alone."""
    probes = random_probes(tiny_bert.config.vocab_size, n=2, length=12, token_types=True)
    cfg = ScoreConfig(trials=2)
    together, _ = score_modules(tiny_bert, probes, ["value"], cfg, progress=False)
    alone = []
    for i in range(2):
        single = ProbeBatch({k: v[i:i + 1] for k, v in probes.inputs.items()}, 0)
        res, _ = score_modules(tiny_bert, single, ["value"], cfg, progress=False)
        alone.append(_means(res))
    assert _means(together).numpy() == pytest.approx(((alone[0] + alone[1]) / 2).numpy(), rel=1e-4)


class Planted(nn.Module):
    """Three residual blocks; block 1's linear map is 50x larger than the others, so noise scaled to
    its own weights moves the output most."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(50, 16)
        self.blocks = nn.ModuleList(nn.ModuleDict({"proj": nn.Linear(16, 16)}) for _ in range(3))
        with torch.no_grad():
            for i, block in enumerate(self.blocks):
                block["proj"].weight.mul_(50.0 if i == 1 else 1.0)

    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids)
        for block in self.blocks:
            h = h + block["proj"](h)
        mask = attention_mask.unsqueeze(-1).float()
        return (h * mask).sum(1) / mask.sum(1)


def test_planted_module_gets_top_score_and_rank():
    from adarank.predict import predict_ranks

    model = Planted()
    plan = predict_ranks(model, rank=4, targets=["proj"], probes=random_probes(50), rule="exact",
                         progress=False)
    scores = [m.score_mean for m in plan.modules]
    ranks = [m.rank for m in plan.modules]
    assert max(range(3), key=scores.__getitem__) == 1
    assert ranks[1] == max(ranks) and ranks[1] > ranks[0] and ranks[1] > ranks[2]
    assert sum(ranks) == 12


@pytest.mark.parametrize("engine", ["batched", "naive"])
def test_weights_unchanged_after_scoring(tiny_llama, engine):
    saved = state_copy(tiny_llama)
    tiny_llama.train()
    score_modules(tiny_llama, _probes_for(tiny_llama), "all-linear", ScoreConfig(trials=2, engine=engine), progress=False)
    assert_state_equal(tiny_llama, saved)
    assert tiny_llama.training  # mode restored


@pytest.mark.parametrize("engine", ["batched", "naive"])
@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("draw", [0, 1, 2])
def test_weights_unchanged_after_injected_failure(tiny_bert, engine, exc_type, draw):
    """A failure inside a perturbed forward (after noise is applied) at a random module restores everything."""
    saved = state_copy(tiny_bert)
    targets = select_targets(tiny_bert)
    index = int(torch.randint(len(targets), (1,), generator=torch.Generator().manual_seed(100 + draw)))
    victim = dict(tiny_bert.named_modules())[targets[index].name]
    calls = {"n": 0}

    def explode(module, args, output):
        calls["n"] += 1
        if calls["n"] == 3:  # the clean pass is call 1; fail during perturbed passes
            raise exc_type("injected")

    handle = victim.register_forward_hook(explode)
    try:
        with pytest.raises(exc_type, match="injected"):
            score_modules(tiny_bert, _probes_for(tiny_bert), targets, ScoreConfig(trials=3, engine=engine), progress=False)
    finally:
        handle.remove()
    assert_state_equal(tiny_bert, saved)
    for name, module in tiny_bert.named_modules():
        assert not module._forward_hooks, f"hook left on {name}"
        assert "forward" not in module.__dict__, f"forward left shadowed on {name}"


def test_nan_outputs_name_the_module(tiny_bert):
    with pytest.raises(AdaRankError, match=r"NaN/Inf when perturbing 'encoder\.layer\.0\.attention\.self\.value' \(trial 1\)"):
        score_modules(tiny_bert, _probes_for(tiny_bert), ["value"], ScoreConfig(trials=2, noise_scale=1e38), progress=False)


@pytest.mark.parametrize("bad", [dict(trials=0), dict(trials=2.5), dict(noise_scale=-1.0), dict(noise_scale=float("nan")),
                                 dict(compare="both"), dict(output="cls"), dict(engine="fast")])
def test_config_validation(bad):
    with pytest.raises(AdaRankError):
        ScoreConfig(**bad)


def test_tied_lm_head_means_its_output_only(tiny_gpt2):
    """lm_head shares its weight with the input embedding. Perturbing lm_head perturbs its output only, in both
    engines (before, the naive engine's in-place noise also moved the embedding lookup, so the engines disagreed)."""
    assert tiny_gpt2.lm_head.weight is tiny_gpt2.transformer.wte.weight
    probes = _probes_for(tiny_gpt2)
    batched, _ = score_modules(tiny_gpt2, probes, ["lm_head"], ScoreConfig(trials=3, engine="batched"), progress=False)
    naive, _ = score_modules(tiny_gpt2, probes, ["lm_head"], ScoreConfig(trials=3, engine="naive"), progress=False)
    assert naive[0].scores == pytest.approx(batched[0].scores, rel=1e-4)
    assert tiny_gpt2.lm_head.weight is tiny_gpt2.transformer.wte.weight  # the tie survives


def _module_modes(model) -> dict[str, bool]:
    return {name: module.training for name, module in model.named_modules()}


@pytest.mark.parametrize("engine", ["batched", "naive"])
def test_every_submodule_gets_its_own_mode_back(tiny_bert, engine):
    """A model half in train mode (a frozen backbone in eval, one block training) comes back exactly so,
    after scoring and after a failure mid-scoring."""
    tiny_bert.eval()
    tiny_bert.encoder.layer[1].train()
    before = _module_modes(tiny_bert)
    assert sorted(set(before.values())) == [False, True]
    probes = _probes_for(tiny_bert)
    score_modules(tiny_bert, probes, ["value"], ScoreConfig(trials=2, engine=engine), progress=False)
    assert _module_modes(tiny_bert) == before
    victim = tiny_bert.encoder.layer[2].attention.self.value
    calls = {"n": 0}

    def explode(module, args, output):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected")

    handle = victim.register_forward_hook(explode)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            score_modules(tiny_bert, probes, ["value"], ScoreConfig(trials=2, engine=engine), progress=False)
    finally:
        handle.remove()
    assert _module_modes(tiny_bert) == before


def test_accelerate_hooks_survive_prefix_replay(tiny_bert):
    """accelerate (device_map, offloading) wraps a module's forward on the instance; prefix replay shadows the
    same attribute and must put back exactly what was there, not delete it."""
    from accelerate.hooks import ModelHook, add_hook_to_module

    class Counting(ModelHook):
        def __init__(self):
            self.calls = 0

        def pre_forward(self, module, *args, **kwargs):
            self.calls += 1
            return args, kwargs

    probes = _probes_for(tiny_bert)
    cfg = ScoreConfig(trials=2, prefix_replay=True)
    plain, _ = score_modules(tiny_bert, probes, ["value"], cfg, progress=False)
    blocks = list(tiny_bert.encoder.layer)
    hooks = [Counting() for _ in blocks]
    for block, hook in zip(blocks, hooks):
        add_hook_to_module(block, hook)
    wrappers = [block.__dict__["forward"] for block in blocks]
    hooked, _ = score_modules(tiny_bert, probes, ["value"], cfg, progress=False)
    assert _means(hooked).numpy() == pytest.approx(_means(plain).numpy(), rel=1e-6)
    assert [block.__dict__.get("forward") for block in blocks] == wrappers
    assert all(block._hf_hook is hook for block, hook in zip(blocks, hooks))
    counts = [hook.calls for hook in hooks]
    with torch.no_grad():
        tiny_bert(**probes.inputs)
    assert [hook.calls for hook in hooks] == [c + 1 for c in counts]  # every wrapper still runs
    # a block that had no forward of its own is left with none
    for name, module in tiny_bert.named_modules():
        if module not in blocks:
            assert "forward" not in module.__dict__, name


class AttentionBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.ff = nn.Linear(16, 16)

    def forward(self, h, padding):
        a, _ = self.attn(h, h, h, key_padding_mask=padding, need_weights=False)
        h = h + a
        return h + torch.tanh(self.ff(h))


class WithMultiheadAttention(nn.Module):
    """nn.MultiheadAttention calls F.multi_head_attention_forward with out_proj.weight: the out_proj Linear's
    own forward (and any hook on it) never runs."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(50, 16)
        self.blocks = nn.ModuleList(AttentionBlock() for _ in range(2))

    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids)
        for block in self.blocks:
            h = block(h, attention_mask == 0)
        mask = attention_mask.unsqueeze(-1).float()
        return (h * mask).sum(1) / mask.sum(1)


class SeqFirstBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 16)

    def forward(self, h):
        return h + torch.tanh(self.proj(h))


class SequenceFirst(nn.Module):
    """Blocks work on (seq, batch, features), as torch's own transformer layers do without batch_first."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(50, 16)
        self.position = nn.Embedding(16, 16)
        self.blocks = nn.ModuleList(SeqFirstBlock() for _ in range(3))

    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids) + self.position(torch.arange(input_ids.shape[1]))
        h = h.transpose(0, 1)
        for block in self.blocks:
            h = block(h)
        h = h.transpose(0, 1)
        mask = attention_mask.unsqueeze(-1).float()
        return (h * mask).sum(1) / mask.sum(1)


@pytest.mark.parametrize("replay", [True, False])
@pytest.mark.parametrize("case", ["multihead-attention", "seq-first-len-2", "seq-first-len-4", "seq-first-len-8"])
def test_batched_engine_is_right_where_its_hook_cannot_be(case, replay, caplog):
    """Where the output hook never runs (out_proj of nn.MultiheadAttention) or sees (seq, batch, ...) inputs,
    the batched engine scored 0 or mixed the copies up. Here 2K = 4 replicas of 2 examples: 4 and 8 tokens
    divide the rows evenly, 8 = 4 x 2 even passes a row count, and 2 tokens (= the batch) make the replayed
    block outputs look batch-first. It must give the naive engine's values, and say which modules."""
    if case == "multihead-attention":
        model, targets, probes = WithMultiheadAttention(), ["out_proj", "ff"], random_probes(50)
    else:
        length = int(case.rsplit("-", 1)[1])
        model, targets, probes = SequenceFirst(), ["proj"], random_probes(50, n=2, length=length)
    cfg = dict(trials=2, prefix_replay=replay)
    naive, _ = score_modules(model, probes, targets, ScoreConfig(engine="naive", **cfg), progress=False)
    with caplog.at_level("WARNING", logger="adarank.scoring"):
        fast, _ = score_modules(model, probes, targets, ScoreConfig(engine="batched", **cfg), progress=False)
    assert all(s > 0 for r in naive for s in r.scores)
    for a, b in zip(fast, naive):
        assert a.target.name == b.target.name
        assert a.scores == pytest.approx(b.scores, rel=1e-4), a.target.name
    blind = [r.target.name for r in fast if case != "multihead-attention" or r.target.name.endswith("out_proj")]
    assert blind and all(name in caplog.text for name in blind)
    assert not any(name in caplog.text for name in {r.target.name for r in fast} - set(blind))


@pytest.mark.parametrize("fixture", MODELS)
def test_transformers_models_need_no_fallback(fixture, request, caplog):
    """The hook checks must not hand ordinary batch-first transformer modules to the slow naive engine."""
    model = request.getfixturevalue(fixture)
    with caplog.at_level("INFO", logger="adarank.scoring"):
        score_modules(model, _probes_for(model), "all-linear", ScoreConfig(trials=2), progress=False)
    assert "naive engine instead" not in caplog.text
    assert "prefix replay disabled" not in caplog.text
