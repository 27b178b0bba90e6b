"""Importance signals besides disagreement: fisher, representation, combined."""

import json
import math

import pytest
import torch

from adarank.checkpoint import CHECKPOINT_NAME
from adarank.errors import AdaRankError
from adarank.outputs import cosine_distance
from adarank.predict import predict_ranks
from adarank.scoring import ModuleScore, ScoreConfig, score_modules
from adarank.signals import SIGNALS, combined_scores, fisher_scores, representation_scores, score_by_signal
from adarank.targets import Target, select_targets

from conftest import assert_state_equal, random_probes, state_copy
from test_scoring import Planted

MODELS = ["tiny_bert", "tiny_gpt2", "tiny_llama"]


def _probes_for(model):
    return random_probes(model.config.vocab_size, token_types=model.config.model_type == "bert")


@pytest.mark.parametrize("fixture", MODELS)
@pytest.mark.parametrize("signal", SIGNALS)
def test_signal_finite_nonnegative_k_values_deterministic(fixture, signal, request):
    model = request.getfixturevalue(fixture)
    probes = _probes_for(model)
    cfg = ScoreConfig(trials=3, seed=3)
    first, output = score_by_signal(signal, model, probes, "all-linear", cfg, False)
    again, _ = score_by_signal(signal, model, probes, "all-linear", cfg, False)
    assert [r.target.name for r in first] == [t.name for t in select_targets(model)]
    for r in first:
        assert len(r.scores) == 3
        assert all(math.isfinite(s) and s >= 0 for s in r.scores)
    assert [r.scores for r in first] == [r.scores for r in again]  # bit for bit
    if signal != "combined":
        assert any(r.mean > 0 for r in first)
    expected = {"fisher": "representation-norm" if fixture == "tiny_bert" else "next-token-loss",
                "representation": "hidden:cosine"}
    if signal in expected:
        assert output == expected[signal]


def test_fisher_folds_and_seed(tiny_gpt2):
    probes = _probes_for(tiny_gpt2)  # 6 examples
    few = fisher_scores(tiny_gpt2, probes, ["c_attn"], folds=10)
    assert all(len(r.scores) == 6 for r in few)  # K = min(folds, examples)
    a = fisher_scores(tiny_gpt2, probes, ["c_attn"], seed=0, folds=3)
    b = fisher_scores(tiny_gpt2, probes, ["c_attn"], seed=1, folds=3)
    assert [r.scores for r in a] != [r.scores for r in b]  # another fold assignment ...
    for x, y in zip(a, b):  # ... same mean over all examples (equal fold sizes)
        assert x.mean == pytest.approx(y.mean, rel=1e-9)
    assert len(fisher_scores(tiny_gpt2, probes, ["c_attn"])[0].scores) == 5


def test_fisher_is_per_example_and_ignores_padding(tiny_llama):
    """The fisher value of two examples is the mean of their values alone (squares of per-example
    gradients, not of a batch gradient), whatever padding the pair needs."""
    probes = random_probes(tiny_llama.config.vocab_size, n=2, length=12)
    together = fisher_scores(tiny_llama, probes, ["q_proj"], folds=1)
    alone = [fisher_scores(tiny_llama, probes.select(slice(i, i + 1)), ["q_proj"], folds=1) for i in range(2)]
    for j, r in enumerate(together):
        assert r.mean == pytest.approx((alone[0][j].mean + alone[1][j].mean) / 2, rel=1e-5)


def _snapshot(model):
    return ([p.requires_grad for p in model.parameters()], [p.grad for p in model.parameters()], model.training)


@pytest.mark.parametrize("fixture", MODELS)
@pytest.mark.parametrize("training", [False, True])
def test_fisher_leaves_the_model_as_it_was(fixture, training, request):
    model = request.getfixturevalue(fixture)
    model.train(training)
    params = list(model.parameters())
    params[0].requires_grad_(False)  # a mixed set of flags must come back as it was
    saved = state_copy(model)
    before = _snapshot(model)
    fisher_scores(model, _probes_for(model), "all-linear", folds=2)
    assert_state_equal(model, saved)
    after = _snapshot(model)
    assert after[0] == before[0]
    assert all(g is None for g in after[1])
    assert after[2] == training


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("where", ["forward", "backward"])
def test_fisher_restores_everything_after_injected_failure(tiny_bert, exc_type, where):
    tiny_bert.train()
    flags = [p.requires_grad for p in tiny_bert.parameters()]
    saved = state_copy(tiny_bert)
    victim = dict(tiny_bert.named_modules())[select_targets(tiny_bert)[5].name]
    calls = {"n": 0}

    def explode(*_):
        calls["n"] += 1
        if calls["n"] == 3:  # the third example
            raise exc_type("injected")

    handle = (victim.register_forward_hook(explode) if where == "forward"
              else victim.register_full_backward_hook(explode))
    try:
        with pytest.raises(exc_type, match="injected"):
            fisher_scores(tiny_bert, _probes_for(tiny_bert), "all-linear")
    finally:
        handle.remove()
    assert calls["n"] == 3
    assert_state_equal(tiny_bert, saved)
    assert [p.requires_grad for p in tiny_bert.parameters()] == flags
    assert all(p.grad is None for p in tiny_bert.parameters())
    assert tiny_bert.training


@pytest.mark.parametrize("signal", ["fisher", "representation", "combined", "disagreement"])
def test_planted_module_ranks_first(signal):
    model = Planted()
    scores, _ = score_by_signal(signal, model, random_probes(50), ["proj"], ScoreConfig(trials=3), False)
    means = [r.mean for r in scores]
    assert max(range(3), key=means.__getitem__) == 1, means


def test_representation_is_cosine_on_hidden_states(tiny_gpt2):
    """Same machinery as disagreement: equals score_modules with output=hidden, distance=cosine,
    and the batched engine (with prefix replay) agrees with the naive one."""
    probes = _probes_for(tiny_gpt2)
    rep = representation_scores(tiny_gpt2, probes, "all-linear", ScoreConfig(trials=2))
    direct, choice = score_modules(tiny_gpt2, probes, "all-linear", ScoreConfig(trials=2, output="hidden", distance="cosine"),
                                   progress=False)
    assert choice == "hidden"
    assert [r.scores for r in rep] == [r.scores for r in direct]
    naive = representation_scores(tiny_gpt2, probes, "all-linear", ScoreConfig(trials=2, engine="naive"))
    for a, b in zip(rep, naive):
        assert a.scores == pytest.approx(b.scores, rel=1e-3, abs=1e-9)


def test_cosine_distance_masks_padding():
    a = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [5.0, 5.0]]])
    b = torch.tensor([[[0.0, 1.0], [2.0, 0.0], [-5.0, 7.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert cosine_distance(a, b, mask).tolist() == pytest.approx([0.5])  # (1 + 0) / 2; the pad token ignored
    assert cosine_distance(a[:, 0], b[:, 0], None).tolist() == pytest.approx([1.0])


def _ms(name, scores):
    return ModuleScore(Target(name, name, None, (4, 4), "linear"), scores)


def test_combined_is_a_rank_average():
    a = [_ms("x", [1.0, 3.0]), _ms("y", [10.0, 10.0]), _ms("z", [0.5, 0.5]), _ms("w", [5.0, 5.0])]
    b = [_ms("w", [0.1]), _ms("x", [9.0]), _ms("y", [0.2]), _ms("z", [4.0])]
    # ranks in a: z 1, x 2, w 3, y 4 -> /4; in b: w 1, y 2, z 3, x 4 -> /4
    out = combined_scores(a, b)
    assert [r.target.name for r in out] == ["x", "y", "z", "w"]
    assert [r.scores for r in out] == [[0.75, 0.75], [0.75, 0.75], [0.5, 0.5], [0.5, 0.5]]
    assert all(r.std == 0 for r in out)
    ties = combined_scores([_ms("p", [1.0]), _ms("q", [1.0]), _ms("s", [2.0])],
                           [_ms("p", [1.0]), _ms("q", [2.0]), _ms("s", [3.0])])
    assert [r.mean for r in ties] == pytest.approx([(1.5 / 3 + 1 / 3) / 2, (1.5 / 3 + 2 / 3) / 2, 1.0])
    with pytest.raises(AdaRankError, match="same modules"):
        combined_scores(a, b[:3])


def test_predict_ranks_stores_the_signal(tiny_gpt2):
    probes = _probes_for(tiny_gpt2)
    plan = predict_ranks(tiny_gpt2, rank=4, probes=probes, signal="fisher", progress=False,
                         score_config=ScoreConfig(trials=2))
    assert plan.settings["signal"] == "fisher"
    assert plan.settings["output"] == "next-token-loss"
    fisher = fisher_scores(tiny_gpt2, probes, "all-linear", folds=2)
    assert [m.score_mean for m in plan.modules] == pytest.approx([r.mean for r in fisher])
    default = predict_ranks(tiny_gpt2, rank=4, probes=probes, progress=False, score_config=ScoreConfig(trials=2))
    assert default.settings["signal"] == "disagreement"


def test_unknown_signal_is_refused_before_scoring(tiny_bert):
    with pytest.raises(AdaRankError, match="unknown signal 'gradnorm'.*disagreement, fisher, representation, combined"):
        predict_ranks(tiny_bert, rank=4, probes=_probes_for(tiny_bert), signal="gradnorm", progress=False)
    with pytest.raises(AdaRankError, match="unknown signal"):
        score_by_signal("gradnorm", tiny_bert, _probes_for(tiny_bert), "all-linear")


def test_checkpoint_never_mixes_signals(tiny_bert, tmp_path):
    probes = _probes_for(tiny_bert)
    kw = dict(rank=4, probes=probes, progress=False, score_config=ScoreConfig(trials=2), checkpoint_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        predict_ranks(tiny_bert, signal="fisher", on_module=lambda r: (_ for _ in ()).throw(KeyboardInterrupt()), **kw)
    assert json.loads((tmp_path / CHECKPOINT_NAME).read_text())["fingerprint"]["signal"] == "fisher"
    with pytest.raises(AdaRankError, match="other settings.*signal"):
        predict_ranks(tiny_bert, signal="representation", **kw)
    plan = predict_ranks(tiny_bert, signal="fisher", **kw)  # same signal resumes
    assert plan.settings["resumed_modules"] == 1


def test_combined_in_predict_ignores_partial_checkpoint(tiny_bert, tmp_path):
    probes = _probes_for(tiny_bert)
    kw = dict(rank=4, probes=probes, progress=False, score_config=ScoreConfig(trials=2))
    reference = predict_ranks(tiny_bert, signal="combined", **kw)
    seen = []

    def stop(result):
        seen.append(result)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_ranks(tiny_bert, signal="combined", checkpoint_dir=tmp_path, on_module=stop, **kw)
    resumed = predict_ranks(tiny_bert, signal="combined", checkpoint_dir=tmp_path, **kw)
    assert resumed.modules == reference.modules
