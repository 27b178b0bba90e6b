"""Disagreement scoring (docs/method.md section 2): how far weight noise in one module moves the output.

For each target and each of K trials, two independent Gaussian draws E1, E2 (std = noise_scale x the
population std of the module's own weight, and of its bias) give two perturbed models; the trial's
score is the mean over probe examples of the l1 distance between their outputs. ``compare="clean"``
compares one perturbed model with the unperturbed one instead (the authors' notebook).
``distance="cosine"`` with ``output="hidden"`` compares the last hidden states token by token
instead (the ``representation`` signal of :mod:`adarank.signals`).

The default ``batched`` engine never writes to the model: a forward hook on the target adds each
replica's noise term ``x @ E_r^T + e_r`` to the module's output, and the probe batch is stacked once
per replica, so all 2K perturbed models of a module run in one pass. The ``naive`` engine runs one
forward per perturbed copy, with the module computing from a perturbed copy of its weight. Both
draw the same noise from the same seeds, and both perturb the module's output only: a weight tied
to another module (``lm_head`` and the input embedding) stays clean in that other module.
"""

from __future__ import annotations

import logging
import math
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Literal, Sequence

import torch
from torch import nn

from .errors import AdaRankError
from .outputs import DISTANCES, OUTPUT_CHOICES, distance_function, needs_hidden_states, representation, resolve_output
from .probes import ProbeBatch
from .targets import Target, find_block_stack, select_targets

log = logging.getLogger(__name__)

Compare = Literal["pair", "clean"]
Engine = Literal["batched", "naive"]
Distance = Literal["l1", "cosine"]


@dataclass
class ScoreConfig:
    """How modules are perturbed and compared. Every field is stored in the plan.

    Each field is declared here once: its help text becomes the ``predict`` option of the same name
    (``trials`` -> ``--trials``) and :meth:`__post_init__` checks it for the CLI and the Python API
    alike (:func:`adarank.predict.predict_ranks` takes the same names as keyword arguments)."""

    trials: int = field(default=5, metadata={"help": "independent trials K per module; scores are their mean"})
    noise_scale: float = field(default=1.0, metadata={"help": "noise std as a multiple of the std of the module's own weights"})
    compare: Compare = field(default="pair", metadata={"help": "pair: two perturbed copies (the paper); clean: one perturbed copy vs the clean model (the authors' code)"})
    output: str = field(default="auto", metadata={"choices": OUTPUT_CHOICES, "help": "auto (logits if the model has a head, else mean of last hidden state), logits, pooled, first, mean, hidden (last hidden state per token)"})
    seed: int = field(default=0, metadata={"help": "base seed of every noise draw; the same seed gives the same scores bit for bit on one machine"})
    engine: Engine = field(default="batched", metadata={"help": "batched: all perturbed copies of a module in one pass through hooks; naive: one forward per copy, the module computing from a perturbed copy of its weights"})
    max_batch: int = field(default=256, metadata={"help": "most sequences in one forward (replicas x probe examples); halved automatically on CUDA out-of-memory"})
    prefix_replay: bool = field(default=True, metadata={"help": "batched engine: replay the clean outputs of the blocks before the perturbed one instead of recomputing them"})
    distance: Distance = field(default="l1", metadata={"help": "l1 (the paper) or cosine (1 - cos, per token for per-token outputs) between the compared outputs"})

    def __post_init__(self) -> None:
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise AdaRankError(f"trials must be an integer >= 1, got {self.trials!r}; pass --trials 5")
        if not isinstance(self.noise_scale, (int, float)) or not math.isfinite(self.noise_scale) or self.noise_scale <= 0:
            raise AdaRankError(f"noise scale must be a finite number > 0, got {self.noise_scale!r}; pass --noise-scale 1.0")
        if self.compare not in ("pair", "clean"):
            raise AdaRankError(f"compare must be 'pair' or 'clean', got {self.compare!r}")
        if self.output not in OUTPUT_CHOICES:
            raise AdaRankError(f"output must be one of {', '.join(OUTPUT_CHOICES)}, got {self.output!r}")
        if self.engine not in ("batched", "naive"):
            raise AdaRankError(f"engine must be 'batched' or 'naive', got {self.engine!r}")
        if not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise AdaRankError(f"max batch must be an integer >= 1, got {self.max_batch!r}")
        if self.distance not in DISTANCES:
            raise AdaRankError(f"distance must be one of {', '.join(DISTANCES)}, got {self.distance!r}")

    @property
    def copies(self) -> int:
        """Perturbed models per trial."""
        return 2 if self.compare == "pair" else 1


@dataclass
class ModuleScore:
    """Scores of one module: the K trial values and their mean and sample std."""

    target: Target
    scores: list[float]

    @property
    def mean(self) -> float:
        return float(sum(self.scores) / len(self.scores))

    @property
    def std(self) -> float:
        k = len(self.scores)
        if k < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((s - m) ** 2 for s in self.scores) / (k - 1))


def noise_seed(seed: int, module_name: str, trial: int, copy: int) -> int:
    """A seed per draw that depends on the module's name, not its position in the target list,
    so a module scores the same whichever other modules are scored with it (or on which GPU)."""
    key = f"{seed}:{module_name}:{trial}:{copy}".encode()
    return zlib.crc32(key) | (zlib.crc32(key[::-1]) << 32)


def draw_noise(module: nn.Module, name: str, config: ScoreConfig, trial: int, copy: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The noise for one perturbed copy: same storage shape and dtype as the weight (and bias)."""
    weight = module.weight
    gen = torch.Generator(device=weight.device)
    gen.manual_seed(noise_seed(config.seed, name, trial, copy))
    w_std = weight.detach().float().std(unbiased=False)
    noise_w = torch.randn(weight.shape, generator=gen, device=weight.device, dtype=torch.float32)
    noise_w = (noise_w * (config.noise_scale * w_std)).to(weight.dtype)
    bias = getattr(module, "bias", None)
    noise_b = None
    if isinstance(bias, torch.Tensor):
        b_std = bias.detach().float().std(unbiased=False)
        noise_b = torch.randn(bias.shape, generator=gen, device=bias.device, dtype=torch.float32)
        noise_b = (noise_b * (config.noise_scale * b_std)).to(bias.dtype)
    return noise_w, noise_b


def _as_linear_t(module: nn.Module, noise_w: torch.Tensor) -> torch.Tensor:
    """Noise in the (d_in, d_out) layout that right-multiplies the input."""
    return noise_w.t() if isinstance(module, nn.Linear) else noise_w


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-2) -> bool:
    """Equal up to rounding (a different batch size may change the last bits, more so in bf16/fp16);
    the layout mix-ups this guards against differ by the size of the values themselves."""
    if a.shape != b.shape:
        return False
    scale = float(b.detach().abs().amax()) if b.numel() else 0.0
    return bool((a.detach().float() - b.detach().float()).abs().amax() <= rel * scale + 1e-12) if a.numel() else True


@dataclass
class _HookAudit:
    """What the replica hook saw during one batched forward: it must run, and on batch-first inputs.

    The hook adds replica r's noise to rows r*n..r*n+n-1, which is right only if the module's input
    holds the R stacked copies of the n examples along dim 0. A module whose forward never runs
    (``nn.MultiheadAttention`` reads ``out_proj.weight`` directly) or that sees (seq, batch, ...)
    inputs would otherwise score 0 or mix the copies up without a sign.
    """

    reps: int
    rows: int
    calls: int = 0
    problem: str | None = None

    def check(self, x: torch.Tensor, output: torch.Tensor) -> bool:
        self.calls += 1
        if self.problem is not None:
            return False
        if not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor) or x.dim() < 1 \
                or output.shape[:-1] != x.shape[:-1]:
            self.problem = "its input or output is not a (rows, ..., features) tensor"
        elif self.reps > 1 and x.shape[0] != self.reps * self.rows:
            self.problem = (f"its input has {x.shape[0]} rows where {self.reps} stacked copies of {self.rows} "
                            "examples were expected (not batch-first)")
        elif self.reps > 1 and self.calls == 1:
            # Nothing upstream of its first call is perturbed, so every copy must bring the same input.
            copies = x.reshape(self.reps, -1)
            if not _close(copies[1:], copies[:1].expand_as(copies[1:])):
                self.problem = "the stacked copies reach it with different inputs (dim 0 is not the batch)"
        return self.problem is None

    def verdict(self) -> str | None:
        if self.calls == 0:
            return "its forward never runs (the model uses its weight directly)"
        return self.problem


@contextmanager
def _replica_noise_hook(module: nn.Module, noises: list[tuple[torch.Tensor, torch.Tensor | None]],
                        audit: _HookAudit) -> Iterator[None]:
    """Add replica r's noise term to rows r*n..r*n+n-1 of the module's output; weights untouched.
    A call that ``audit`` rejects is left unperturbed, and the caller scores the module another way."""
    reps = len(noises)
    e_w = torch.stack([_as_linear_t(module, w) for w, _ in noises])  # (R, d_in, d_out)
    e_b = None if noises[0][1] is None else torch.stack([b for _, b in noises])  # (R, d_out)

    def hook(mod: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        x = args[0] if args else None
        if not audit.check(x, output):  # type: ignore[arg-type]
            return output
        xr = x.reshape(reps, -1, x.shape[-1])  # type: ignore[union-attr]
        delta = torch.bmm(xr.to(e_w.dtype), e_w)
        if e_b is not None:
            delta = delta + e_b[:, None, :]
        return output + delta.reshape(output.shape).to(output.dtype)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def _perturbed_copy(module: nn.Module, noise: tuple[torch.Tensor, torch.Tensor | None]) -> Iterator[None]:
    """The module computes with W+E (and b+e) held in new tensors, and gets its own parameters back after.

    Perturbing a module means perturbing its output only. Adding the noise to the parameter in place
    would also perturb every other user of that tensor (a tied input embedding, when ``lm_head`` is
    scored), which the batched engine's output hook never does; a separate copy gives both engines
    one meaning. The original parameters are never written, so they survive exceptions and
    KeyboardInterrupt bit for bit; they are put back by identity, which keeps the tie intact.
    """
    saved: dict[str, nn.Parameter] = {}
    try:
        for attr, delta in (("weight", noise[0]), ("bias", noise[1])):
            param = module._parameters.get(attr)
            if param is None or delta is None:
                continue
            saved[attr] = param
            setattr(module, attr, nn.Parameter(param.detach() + delta, requires_grad=False))
        yield
    finally:
        for attr, param in saved.items():
            setattr(module, attr, param)


_ABSENT = object()  # marks "the instance had no forward of its own"


def _replicate(value: Any, reps: int, rows: int) -> Any:
    """A cached clean block output, stacked ``reps`` times along the batch dimension."""
    if isinstance(value, torch.Tensor):
        return value.repeat(reps, *([1] * (value.dim() - 1))) if value.dim() and value.shape[0] == rows else value
    if isinstance(value, tuple):
        return type(value)(_replicate(v, reps, rows) for v in value) if not hasattr(value, "_fields") else value
    return value


@contextmanager
def _replayed_prefix(blocks: Sequence[nn.Module], cached: Sequence[Any], upto: int, reps: int, rows: int) -> Iterator[None]:
    """Blocks ``0..upto-1`` return their cached clean outputs instead of computing.

    Noise in block ``upto`` cannot change anything before it, so recomputing those blocks for every
    perturbed copy is wasted work. The block's ``forward`` is shadowed on the instance and the
    shadow removed afterwards; no module is replaced and no weight is touched.
    """
    # An instance may already carry its own ``forward`` (accelerate's device/offload hooks live there):
    # it is put back as it was, and an instance that had none is left with none.
    saved: list[tuple[nn.Module, Any]] = []
    try:
        for i in range(upto):
            out = _replicate(cached[i], reps, rows)
            saved.append((blocks[i], blocks[i].__dict__.get("forward", _ABSENT)))
            blocks[i].forward = (lambda o: (lambda *args, **kwargs: o))(out)  # type: ignore[method-assign]
        yield
    finally:
        for block, previous in saved:
            if previous is _ABSENT:
                del block.forward
            else:
                block.forward = previous  # type: ignore[method-assign]


class _Scorer:
    """Runs the forwards for one model and probe batch; one instance per ``score_modules`` call."""

    def __init__(self, model: nn.Module, probes: ProbeBatch, config: ScoreConfig,
                 forward: Callable[[nn.Module, dict[str, torch.Tensor]], Any] | None) -> None:
        self.model = model
        self.config = config
        self.forward = forward or (lambda m, batch: m(**batch))
        device = next(model.parameters()).device
        self.probes = probes.to(device)
        self.max_batch = config.max_batch
        self.choice = config.output
        self.distance = distance_function(config.distance)
        self.hidden_states = False  # call with output_hidden_states=True (``hidden`` on a model with logits)
        self.clean: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self.block_outputs: list[list[Any]] = []  # per probe chunk, the clean output of every block
        self.fallbacks: dict[str, str] = {}  # modules the batched hook cannot score, and why: run naively
        stack = find_block_stack(model) if config.prefix_replay and config.engine == "batched" else None
        self.blocks: nn.ModuleList | None = stack[1] if stack else None
        if config.prefix_replay and config.engine == "batched" and stack is None:
            log.info("no block stack recognised: every perturbed copy runs the full model (no prefix replay)")

    def chunks(self) -> list[slice]:
        n = len(self.probes)
        size = max(1, min(n, self.max_batch // (2 if self.config.compare == "pair" else 1)))
        return [slice(i, min(n, i + size)) for i in range(0, n, size)]

    def run(self, batch: dict[str, torch.Tensor], mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        outputs = self.forward(self.model, {**batch, "output_hidden_states": True} if self.hidden_states else batch)
        if self.choice == "auto":
            self.choice = resolve_output(outputs, "auto")
        return representation(outputs, mask, self.choice)

    def prepare(self) -> None:
        """Clean outputs once per probe chunk: needed by ``clean`` mode, and a finiteness check for all."""
        self.clean, self.block_outputs = [], []
        if self.choice == "hidden" and not self.hidden_states:
            first = self.probes.select(slice(0, 1))
            self.hidden_states = needs_hidden_states(self.forward(self.model, first.inputs), "hidden")
        for part in self.chunks():
            sub = self.probes.select(part)
            captured: list[Any] = []
            handles = [b.register_forward_hook(lambda m, a, o: captured.append(o)) for b in (self.blocks or [])]
            try:
                rep, tmask = self.run(sub.inputs, sub.attention_mask)
            finally:
                for h in handles:
                    h.remove()
            if self.blocks is not None and len(captured) != len(self.blocks):
                log.info("blocks ran %d times for %d blocks: prefix replay disabled", len(captured), len(self.blocks))
                self.blocks = None
            if self.blocks is not None and not self.block_outputs and not self._replay_reproduces(sub, captured, rep):
                log.info("replaying the clean block outputs does not reproduce the model's output "
                         "(blocks not batch-first?): prefix replay disabled")
                self.blocks = None
            self.block_outputs.append(captured)
            if not torch.isfinite(rep).all():
                raise AdaRankError("the unperturbed model already gives NaN/Inf outputs on the probes; "
                                   "check the model's weights and --dtype (try fp32)")
            self.clean.append((rep, tmask))

    def _replay_reproduces(self, sub: ProbeBatch, captured: list[Any], clean: torch.Tensor) -> bool:
        """Whether two stacked copies, all blocks but the last replayed, give the clean output twice.

        Replay stacks the cached outputs along dim 0, which is right only for batch-first blocks; a
        (seq, batch, ...) block whose sequence length equals the batch size would pass every shape test
        and still be stacked along the sequence. One cheap forward settles it for any architecture.
        """
        n, reps = len(sub), 2
        stacked = sub.repeat(reps)
        try:
            with _replayed_prefix(self.blocks or [], captured, len(captured) - 1, reps, n):
                out, _ = self.run(stacked, stacked["attention_mask"])
        except torch.cuda.OutOfMemoryError:
            raise
        except (RuntimeError, ValueError, IndexError, TypeError):  # shapes that do not fit: not batch-first
            return False
        return _close(out, clean.repeat(reps, *([1] * (clean.dim() - 1))))

    def score(self, module: nn.Module, target: Target) -> list[float]:
        while True:
            try:
                return self._score(module, target)
            except torch.cuda.OutOfMemoryError:
                if self.max_batch <= 1:
                    raise
                self.max_batch //= 2
                log.warning("CUDA out of memory; retrying %s with at most %d sequences a forward", target.name, self.max_batch)
                torch.cuda.empty_cache()
                self.prepare()

    def _score(self, module: nn.Module, target: Target) -> list[float]:
        cfg = self.config
        copies = cfg.copies
        totals = torch.zeros(cfg.trials, dtype=torch.float64)
        for chunk, (part, (clean_rep, _)) in enumerate(zip(self.chunks(), self.clean)):
            sub = self.probes.select(part)
            n = len(sub)
            per_forward = max(1, self.max_batch // (n * copies))
            for t0 in range(0, cfg.trials, per_forward):
                trials = range(t0, min(cfg.trials, t0 + per_forward))
                noises = [draw_noise(module, target.name, cfg, t, c) for t in trials for c in range(copies)]
                reps = self._perturbed_outputs(module, target, sub, noises, chunk)
                for j, t in enumerate(trials):
                    group = reps[j * copies:(j + 1) * copies]
                    for rep, _ in group:
                        if not torch.isfinite(rep).all():
                            raise AdaRankError(
                                f"outputs became NaN/Inf when perturbing '{target.name}' (trial {t + 1}); "
                                "lower --noise-scale or score in --dtype fp32"
                            )
                    other = group[1][0] if copies == 2 else clean_rep
                    dist = self.distance(group[0][0], other, group[0][1])
                    totals[t] += dist.double().sum().cpu()
        return (totals / len(self.probes)).tolist()

    def _perturbed_outputs(self, module: nn.Module, target: Target, sub: ProbeBatch,
                           noises: list[tuple[torch.Tensor, torch.Tensor | None]], chunk: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        n = len(sub)
        if self.config.engine == "naive" or target.name in self.fallbacks:
            return self._naive_outputs(module, sub, noises)
        reps = len(noises)
        stacked = sub.repeat(reps)
        upto = target.block if (self.blocks is not None and target.block is not None) else 0
        cached = self.block_outputs[chunk] if upto else []
        audit = _HookAudit(reps, n)
        with _replica_noise_hook(module, noises, audit), _replayed_prefix(self.blocks or [], cached, upto, reps, n):
            rep, tmask = self.run(stacked, stacked["attention_mask"])
        problem = audit.verdict()
        if problem is None and rep.shape[0] != reps * n:
            problem = "the model's output has no row per stacked copy"
        if problem is not None:
            self.fallbacks[target.name] = problem
            return self._naive_outputs(module, sub, noises)
        return [(rep[r * n:(r + 1) * n], None if tmask is None else tmask[r * n:(r + 1) * n]) for r in range(reps)]

    def _naive_outputs(self, module: nn.Module, sub: ProbeBatch,
                       noises: list[tuple[torch.Tensor, torch.Tensor | None]]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """One full forward per perturbed copy: right whatever the module's inputs look like."""
        out = []
        for noise in noises:
            with _perturbed_copy(module, noise):
                out.append(self.run(sub.inputs, sub.attention_mask))
        return out


def score_modules(
    model: nn.Module,
    probes: ProbeBatch,
    targets: Sequence[Target] | str | Sequence[str] = "all-linear",
    config: ScoreConfig | None = None,
    *,
    forward: Callable[[nn.Module, dict[str, torch.Tensor]], Any] | None = None,
    progress: bool = True,
    on_module: Callable[[ModuleScore], None] | None = None,
) -> tuple[list[ModuleScore], str]:
    """Score every target; returns the scores and the concrete output choice used.

    The model is put in eval mode under ``torch.no_grad`` and returned with every submodule in its
    own original mode and its weights bit-for-bit unchanged, whether scoring finishes, fails or is interrupted.
    ``forward(model, batch)`` replaces ``model(**batch)`` for models with another call signature.
    """
    config = config or ScoreConfig()
    if not isinstance(targets, (list, tuple)) or (targets and not isinstance(targets[0], Target)):
        targets = select_targets(model, targets)  # type: ignore[arg-type]
    modules = dict(model.named_modules(remove_duplicate=False))
    # Each submodule's own flag, not just the root's: a model may be half in train mode on purpose
    # (a frozen backbone in eval, a head in train), and model.train(flag) would overwrite all of them.
    modes = [(m, m.training) for m in model.modules()]
    scorer = _Scorer(model, probes, config, forward)
    results: list[ModuleScore] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(targets), desc="scoring modules", unit="module", dynamic_ncols=True)
    try:
        model.eval()
        with torch.no_grad():
            scorer.prepare()
            for target in targets:
                if bar is not None:
                    bar.set_postfix_str(target.name, refresh=False)
                result = ModuleScore(target, scorer.score(modules[target.name], target))
                results.append(result)
                if on_module is not None:
                    on_module(result)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        for module, training in modes:
            module.training = training
    _report_fallbacks(scorer.fallbacks)
    return results, scorer.choice


def _report_fallbacks(fallbacks: dict[str, str]) -> None:
    """One warning per reason, naming the modules that the batched engine handed to the naive one."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in fallbacks.items():
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        log.warning("%s: %s, so the batched engine's output hook cannot perturb it; scored with the naive "
                    "engine instead (same values, one forward per perturbed copy)", shown, reason)


def config_dict(config: ScoreConfig) -> dict[str, Any]:
    return asdict(config)
