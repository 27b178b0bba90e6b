"""One fine-tuning run of the benchmark: a rank allocation method, a dataset, a seed -> one result.

:func:`run_one` loads the model its task needs (:mod:`adarank.compare.tasks`: a sequence classifier
with a new head, or a causal LM for (prompt, completion) data), adapts it with LoRA (ranks from a
plan, or chosen by PEFT's EVA or AdaLoRA), trains, and evaluates on the test split. Everything that
differs between methods is the rank allocation: the head initialisation, the data order, the
optimiser, the schedule and the effective LoRA scale are shared.

Decisions
---------
* **Trainers.** A run trains the way users train: classification with transformers' ``Trainer``
  (``DataCollatorWithPadding``), generation with TRL's ``SFTTrainer`` on pre-tokenised ``input_ids``
  and a ``completion_mask`` with ``completion_only_loss``. Both get our AdamW (LoRA parameters, or every
  weight for full-ft, at ``lr``; a new head's ``modules_to_save`` copy at ``head_lr``) and our linear
  schedule with ``warmup_ratio`` warm-up, through ``optimizers=``; clipping (``max_grad_norm``), bf16
  autocast (CUDA only; CPU stays fp32) and the step loop are the trainer's. No checkpoints, no
  reports, no stdout logging (the printer callback is removed), progress bars only with ``progress``;
  the output folder is temporary. The record's ``trainer`` and ``max_grad_norm`` say which ran.
* **Seeds.** Python, numpy and torch (CPU and CUDA) are seeded from ``seed`` before the model is
  created, so a seed gives every method the same new head. The trainer gets ``seed`` and
  ``data_seed = seed``: accelerate's seedable sampler draws each epoch's permutation from
  ``data_seed`` and the epoch alone, untouched by the model, so every method sees the same batches
  in the same order.
* **Scale.** Every method trains with the same per-rank scale ``alpha / r = lora_alpha_ratio``:
  plan methods through ``alpha_pattern`` (α_i = ratio·r_i), EVA through
  ``adjust_scaling_factors=True`` on ``lora_alpha = ratio·r̄``, AdaLoRA (whose output is scaled by
  ``lora_alpha / init_r``) with ``lora_alpha = ratio·init_r``.
* **Layout guard.** Before the first optimiser step, every plan module is checked in the PEFT model:
  rank > 0 -> a LoRA layer whose A has exactly that many rows and whose scale is ``ratio``;
  rank 0 -> no LoRA layer; and no other module has a LoRA layer. A pattern that silently matched
  nothing would otherwise turn the comparison into uniform LoRA.
* **EVA, and EVA's ranks alone.** ``eva`` is PEFT's EVA (SVD of the layer inputs gives both the
  ranks and the initialisation); ``eva-ranks`` takes the ranks from the same SVD (same batches)
  and starts from PEFT's default LoRA init, so that allocation and initialisation are told apart.
  The SVD runs on training batches (a permutation from ``seed`` on its own generator, so the
  training order is unchanged) without labels: PEFT's default input filter only needs the attention
  mask, and with ``use_label_mask`` a label vector of shape (B,) would be compared against the
  (B, T) token mask. Batches are padded lazily (EVA stops at convergence). Batches with fewer real
  tokens than ``round(rho·r̄)`` are left out (EVA would skip them forever), and EVA is stopped with
  an error after ``EVA_MAX_FORWARDS`` forward passes instead of cycling forever. EVA's SVD time
  (and PEFT's wrapping, for every method) counts as training time.
* **AdaLoRA.** ``init_r = max(r̄ + 1, round(adalora_init_ratio·r̄))`` (pruning needs init_r > target_r),
  ``tinit ≈ 10 %``, ``tfinal ≈ 20 %``, ``deltaT ≈ 1 %`` of the steps, clipped so that
  ``tinit < total_step - tfinal`` always holds. ``update_and_allocate(step)`` is called after the
  optimiser step and before ``zero_grad`` (a ``TrainerCallback.on_optimizer_step``) (masking after the update keeps pruned triplets at zero),
  with ``step`` = number of optimiser steps done (1-based), so the final mask falls on step
  ``total_step - tfinal``. The final ranks are the unmasked triplets of the last rank pattern.
* **Training loss.** The trainer's: the model's own loss under ``Trainer`` (``loss_logits: "full"``),
  the fused LM head's completion-only loss under ``SFTTrainer`` (``"trl-fused-lm-head"``, no
  full-vocabulary logits kept), plus, for AdaLoRA there, PEFT's orthogonality penalty (which the
  model's own loss would have carried). ``TrainConfig.completion_logits`` is unused and kept so that
  older records load; ``loss_check`` is ``None``.
* **Divergence.** Every step's loss is checked on the device; every ``CHECK_EVERY`` steps and at the
  last, a non-finite one ends the run with an error starting with ``DIVERGED_MESSAGE``.
* **Macro-F1** averages per-class F1 = 2TP / (2TP + FP + FN) over the classes present in the test
  labels or the predictions (the classes scikit-learn's ``f1_score(average="macro")`` uses).
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch
from torch import nn

from ..errors import AdaRankError
from ..peft_export import deepest_first, pattern_key, resolve_module_names, target_regex
from ..targets import linear_shape
from .methods import METHODS, PLAN_METHODS, REFERENCE_METHODS, check_method
from .tasks.base import Batches, Task
from .tasks.classification import head_module_names, macro_f1

if TYPE_CHECKING:
    from ..plan import RankPlan

ADAPTER = "default"
#: EVA gives up (with an AdaRankError) after this many forward passes without convergence.
EVA_MAX_FORWARDS = 1000
#: Fewest optimiser steps AdaLoRA's schedule works with (PEFT raises a KeyError below it).
ADALORA_MIN_STEPS = 4
#: Steps between checks that the training loss is finite.
CHECK_EVERY = 25

RESULT_KEYS = ("dataset", "task", "split", "model", "targets", "method", "rank", "seed", "ranks", "lora_params",
               "lora_params_train", "trainable_params", "head_params", "max_rank", "hparams", "metric", "test_score",
               "train_examples", "train_truncated", "train_dropped", "test_examples", "train_seconds",
               "eval_seconds", "wall_seconds", "steps", "loss_logits", "loss_check", "trainer", "max_grad_norm",
               "device", "torch", "transformers", "peft", "trl")


@dataclass
class TrainConfig:
    """Training hyper-parameters shared by every method of a comparison. Stored in each result."""

    lr: float = field(default=5e-4, metadata={"help": "learning rate of the LoRA parameters (AdamW)"})
    head_lr: float | None = field(default=None, metadata={"help": "learning rate of the new classification head; None = lr"})
    epochs: float = field(default=2.0, metadata={"help": "passes over the training split (fractions allowed)"})
    max_steps: int | None = field(default=None, metadata={"help": "cap on optimiser steps (for smoke tests); None = no cap"})
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    eval_batch_size: int = field(default=256, metadata={"help": "evaluation batch size"})
    max_length: int = field(default=64, metadata={"help": "tokens per example after truncation; batches are padded to their longest example"})
    warmup_ratio: float = field(default=0.06, metadata={"help": "share of the steps with linear learning-rate warm-up (then linear decay to 0)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (LoRA and head)"})
    lora_alpha_ratio: float = field(default=2.0, metadata={"help": "LoRA scale alpha/r, the same for every module and method (lora_alpha = ratio x r̄ for uniform)"})
    lora_dropout: float = field(default=0.0, metadata={"help": "dropout on the LoRA input"})
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast (on CUDA only; CPU runs stay fp32)"})
    eva_rho: float = field(default=2.0, metadata={"help": "EVA: a module may get at most round(rho x r̄) ranks (>= 1)"})
    adalora_init_ratio: float = field(default=1.5, metadata={"help": "AdaLoRA: init_r = round(ratio x r̄), pruned to an average of r̄ (> 1)"})
    max_new_tokens: int | None = field(default=None, metadata={"help": "generation tasks: cap on greedy-decoded tokens at evaluation; None = the dataset's own cap"})
    chat_template: bool = field(default=False, metadata={"help": "generation tasks: wrap each prompt in the tokenizer's chat template (one user turn)"})
    completion_logits: bool = field(default=True, metadata={"help": "unused since training runs in TRL's SFTTrainer (whose fused LM head already skips the full logits); accepted so that older records load"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping: the trainer's max_grad_norm (total L2 norm of the gradients)"})

    def __post_init__(self) -> None:
        def positive(name: str, value: Any, *, allow_zero: bool = False, upper: float | None = None) -> None:
            ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
                  and (value >= 0 if allow_zero else value > 0) and (upper is None or value < upper))
            if not ok:
                bound = ">= 0" if allow_zero else "> 0"
                bound += f" and < {upper:g}" if upper is not None else ""
                raise AdaRankError(f"{name} must be a finite number {bound}, got {value!r}")

        def count(name: str, value: Any) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AdaRankError(f"{name} must be an integer >= 1, got {value!r}")

        positive("lr", self.lr)
        if self.head_lr is not None:
            positive("head_lr", self.head_lr)
        positive("epochs", self.epochs)
        if self.max_steps is not None:
            count("max_steps", self.max_steps)
        count("batch_size", self.batch_size)
        count("eval_batch_size", self.eval_batch_size)
        count("max_length", self.max_length)
        if self.max_length < 2:
            raise AdaRankError(f"max_length must be >= 2 (special tokens need room), got {self.max_length}")
        positive("warmup_ratio", self.warmup_ratio, allow_zero=True, upper=1.0)
        positive("weight_decay", self.weight_decay, allow_zero=True)
        positive("lora_alpha_ratio", self.lora_alpha_ratio)
        positive("lora_dropout", self.lora_dropout, allow_zero=True, upper=1.0)
        positive("max_grad_norm", self.max_grad_norm)
        for flag in ("bf16", "chat_template", "completion_logits"):
            if not isinstance(getattr(self, flag), bool):
                raise AdaRankError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
        if self.max_new_tokens is not None:
            count("max_new_tokens", self.max_new_tokens)
        positive("eva_rho", self.eva_rho)
        if self.eva_rho < 1:
            raise AdaRankError(f"eva_rho must be >= 1 (EVA's maximum rank is rho x r), got {self.eva_rho!r}")
        positive("adalora_init_ratio", self.adalora_init_ratio)
        if self.adalora_init_ratio <= 1:
            raise AdaRankError(f"adalora_init_ratio must be > 1 (AdaLoRA prunes from init_r down to r̄), got {self.adalora_init_ratio!r}")

    @property
    def head_learning_rate(self) -> float:
        return self.lr if self.head_lr is None else self.head_lr

    @classmethod
    def field_help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}


# ---------------------------------------------------------------------------------------- helpers
#: The start of the error a diverged run raises; the grid reads it back from errors.jsonl.
DIVERGED_MESSAGE = "training loss became non-finite"


def set_seeds(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class _EvaBatches:
    """Label-free batches in a fixed order with ``len()``, as EVA's loop expects.

    Built lazily: EVA stops at convergence (usually after a few dozen batches), and ``itertools.cycle``
    keeps only what it has consumed, so a large training split is never padded in full.
    """

    def __init__(self, data: Batches, chunks: list[list[int]], device: torch.device) -> None:
        self.data, self.chunks, self.device = data, chunks, device

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for chunk in self.chunks:
            yield self.data.batch(chunk, self.device, with_labels=False)


def _lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    """``{name inside the transformers model: layer}`` for every module carrying our LoRA adapter."""
    from peft.tuners.lora import LoraLayer

    from peft import PeftModel

    inner = model.base_model.model if isinstance(model, PeftModel) else model
    return {name: module for name, module in inner.named_modules()
            if isinstance(module, LoraLayer) and ADAPTER in getattr(module, "lora_A", {})}


def _rank_of(layer: nn.Module) -> int:
    a = layer.lora_A[ADAPTER]
    weight = a.weight if hasattr(a, "weight") else a
    return int(weight.shape[0])


def check_lora_layout(peft_model: nn.Module, expected: dict[str, int], scale: float | None = None) -> None:
    """Abort unless the PEFT model has exactly the planned LoRA layers.

    ``expected`` maps full module names (inside the transformers model) to ranks: rank > 0 needs a
    LoRA layer whose A has that many rows (and scale ``scale`` if given), rank 0 needs no LoRA
    layer, and no module outside ``expected`` may have one.
    """
    layers = _lora_layers(peft_model)
    problems: list[str] = []
    for name, rank in expected.items():
        layer = layers.get(name)
        if rank == 0:
            if layer is not None:
                problems.append(f"{name}: planned rank 0 but has a LoRA layer of rank {_rank_of(layer)}")
            continue
        if layer is None:
            problems.append(f"{name}: planned rank {rank} but has no LoRA layer")
            continue
        got = _rank_of(layer)
        if got != rank:
            problems.append(f"{name}: planned rank {rank} but lora_A has {got} rows")
        elif scale is not None:
            actual = float(layer.scaling[ADAPTER])
            if not math.isclose(actual, scale, rel_tol=1e-6):
                problems.append(f"{name}: LoRA scale {actual:g}, expected alpha/r = {scale:g}")
    extra = sorted(set(layers) - set(expected))
    problems += [f"{name}: has a LoRA layer but is not in the plan" for name in extra]
    if problems:
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise AdaRankError(f"the PEFT model does not match the plan ({shown}); "
                           "the LoRA patterns did not select the planned modules, fix the plan or its export")


def _adalora_schedule(total: int) -> tuple[int, int, int]:
    """(tinit, tfinal, deltaT): ~10 %, ~20 %, ~1 % of the steps, with tinit < total - tfinal."""
    tfinal = min(max(1, round(0.2 * total)), total - 1) if total > 1 else 0
    tinit = max(0, min(round(0.1 * total), total - tfinal - 1))
    delta = max(1, round(0.01 * total))
    return tinit, tfinal, delta


def _shape(module: nn.Module) -> tuple[int, int]:
    base = module.get_base_layer() if hasattr(module, "get_base_layer") else module
    return linear_shape(base)


def _dtype_kwarg(version: str) -> str:
    """``dtype`` since transformers 4.56, ``torch_dtype`` before."""
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return "dtype" if tuple(parts) >= (4, 56) else "torch_dtype"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def _model_label(model_path: str) -> str:
    """A readable model name: the packaged default is named after its hub id, not its folder."""
    try:
        from ..loading import default_model_path

        if os.path.realpath(model_path) == os.path.realpath(default_model_path()):
            return "sentence-transformers/all-MiniLM-L6-v2"
    except AdaRankError:
        pass
    return os.path.basename(str(model_path).rstrip("/\\")) or str(model_path)


# ------------------------------------------------------------------------------------------ run
def run_one(
    model_path: str,
    data: Any,
    *,
    method: str,
    plan: "RankPlan | None",
    targets: list[str],
    rank: int,
    config: TrainConfig,
    seed: int,
    device: str = "auto",
    progress: bool = False,
    extra: dict | None = None,
) -> dict:
    """Fine-tune ``model_path`` on ``data`` with ``method``'s ranks and return one JSON-able result.

    The task follows from the data's type (:func:`adarank.compare.tasks.task_for_data`):
    classification data gets a new head, generation data trains the causal LM itself. ``plan``
    gives the ranks of the rank-list methods (see :mod:`adarank.compare.methods`) and must be
    ``None`` for the methods that choose their own ranks (``eva``, ``eva-ranks``, ``adalora``) and
    the references (``base-model``: no training; ``full-ft``: every weight trained). ``targets`` are
    the target modules' names in the base model (the names of the scored plan); they are resolved
    against the task's model.
    """
    import peft
    import transformers
    import trl
    from transformers import get_linear_schedule_with_warmup

    from ..loading import load_tokenizer, parse_device
    from .tasks import task_for_data

    wall_start = time.perf_counter()
    check_method(method)
    if not isinstance(config, TrainConfig):
        raise AdaRankError(f"config must be a TrainConfig, got {type(config).__name__}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise AdaRankError(f"rank must be an integer >= 1, got {rank!r}")
    rank = int(rank)
    targets = [str(t) for t in targets]
    if not targets or len(set(targets)) != len(targets):
        raise AdaRankError("targets must be a non-empty list of distinct module names")
    if method in PLAN_METHODS:
        if plan is None:
            raise AdaRankError(f"method {method!r} needs a plan (from plan_for_method)")
        plan_names = [m.name for m in plan.modules]
        if sorted(plan_names) != sorted(targets):
            raise AdaRankError(f"the plan's modules differ from targets ({len(plan_names)} vs {len(targets)} names); "
                               "make the plan for the same targets")
    elif plan is not None:
        raise AdaRankError(f"method {method!r} chooses its own ranks; pass plan=None")
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(RESULT_KEYS))
    if clash:
        raise AdaRankError(f"extra must not overwrite result keys {clash}")
    task = task_for_data(data)
    n_train, n_test = task.sizes(data)
    if n_train == 0 or n_test == 0:
        raise AdaRankError(f"dataset {data.name!r} needs training and test examples (has {n_train} and {n_test})")

    dev = parse_device(device)
    autocast = dict(device_type=dev.type, dtype=torch.bfloat16, enabled=bool(config.bf16 and dev.type == "cuda"))

    # ---- model, tokenizer, data (seeds first: a new head is initialised identically per seed)
    set_seeds(seed)
    tokenizer = load_tokenizer(model_path)
    model = task.load_model(model_path, data, _dtype_kwarg(transformers.__version__))
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise AdaRankError(f"the tokenizer of {model_path} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.to(dev)  # before PEFT wraps it: new LoRA layers follow their base layer's device
    train = task.encode(tokenizer, data, config, "train")
    test = task.encode(tokenizer, data, config, "test")
    n_train = len(train)

    heads = task.heads(model)
    head_params = sum(p.numel() for n in heads for p in model.get_submodule(n).parameters())
    mapping = resolve_module_names(targets, model)  # base name -> full name in the task model
    base_of = {full: base for base, full in mapping.items()}
    full_targets = [mapping[t] for t in targets]
    alpha = config.lora_alpha_ratio * rank

    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    if method == "base-model":
        total_steps = 0

    common = dict(task_type=task.peft_task_type, lora_dropout=config.lora_dropout, modules_to_save=list(heads) or None)
    train_start = time.perf_counter()
    adalora_init_r = None
    if method in PLAN_METHODS:
        lora_config = plan.to_lora_config(model, lora_alpha=alpha, **common)  # type: ignore[union-attr]
        model = peft.get_peft_model(model, lora_config)
        check_lora_layout(model, {mapping[m.name]: m.rank for m in plan.modules},  # type: ignore[union-attr]
                          scale=config.lora_alpha_ratio)
    elif method in ("eva", "eva-ranks"):
        from peft import EvaConfig, LoraConfig, initialize_lora_eva_weights
        from peft.tuners.lora.eva import get_eva_state_dict

        eva = LoraConfig(r=rank, lora_alpha=alpha, target_modules=full_targets, init_lora_weights="eva",
                         eva_config=EvaConfig(rho=config.eva_rho, tau=0.99, whiten=False,
                                              adjust_scaling_factors=True), **common)
        eva_batches = _eva_batches(train, config.batch_size, seed, dev, min_tokens=round(config.eva_rho * rank))
        # One SVD pass gives both arms their ranks: eva keeps its components as the LoRA init,
        # eva-ranks keeps only the ranks and starts from PEFT's default init, like every plan method.
        state = get_eva_state_dict(model, eva_batches, peft_config=eva, forward_fn=_capped_forward(EVA_MAX_FORWARDS),
                                   show_progress_bar=progress)
        del eva_batches
        eva_ranks = {_strip_eva_key(k): int(v.shape[0]) for k, v in state.items()}
        if method == "eva":
            model = peft.get_peft_model(model, eva, low_cpu_mem_usage=True)
            # computed on the base model: PEFT looks the components up under the wrapper's names
            initialize_lora_eva_weights(model, eva_state_dict={f"base_model.model.{k}": v for k, v in state.items()},
                                        show_progress_bar=progress)
        else:
            kept = {name: r for name, r in eva_ranks.items() if r > 0}
            if not kept:
                raise AdaRankError("EVA gave every module rank 0; raise the rank or eva_rho")
            lora_config = peft.LoraConfig(
                r=rank, lora_alpha=alpha, target_modules=target_regex(list(kept)),
                rank_pattern={pattern_key(n): kept[n] for n in deepest_first(list(kept))},
                alpha_pattern={pattern_key(n): config.lora_alpha_ratio * kept[n] for n in deepest_first(list(kept))},
                **common)
            model = peft.get_peft_model(model, lora_config)
            check_lora_layout(model, {full: eva_ranks.get(full, 0) for full in full_targets},
                              scale=config.lora_alpha_ratio)
        del state
    elif method == "adalora":
        from peft import AdaLoraConfig

        if total_steps < ADALORA_MIN_STEPS:  # PEFT's allocator masks before it has any importance scores
            raise AdaRankError(f"adalora needs at least {ADALORA_MIN_STEPS} optimiser steps (its pruning schedule "
                               f"warms up, prunes, then fixes the ranks), got {total_steps}; raise max_steps or epochs")
        adalora_init_r = max(rank + 1, int(round(config.adalora_init_ratio * rank)))
        tinit, tfinal, delta = _adalora_schedule(total_steps)
        lora_config = AdaLoraConfig(init_r=adalora_init_r, target_r=rank, tinit=tinit, tfinal=tfinal, deltaT=delta,
                                    total_step=total_steps, lora_alpha=config.lora_alpha_ratio * adalora_init_r,
                                    target_modules=full_targets, **common)
        model = peft.get_peft_model(model, lora_config)
    else:  # references: base-model trains nothing, full-ft every weight
        for p in model.parameters():
            p.requires_grad_(method == "full-ft")
    model.to(dev)

    layers = _lora_layers(model)
    if method in ("eva", "eva-ranks", "adalora"):
        unknown = sorted(set(layers) - set(full_targets))
        if unknown:
            raise AdaRankError(f"{method} put LoRA layers on modules outside the targets: {unknown[:3]}")
        if method == "adalora":
            check_lora_layout(model, {full: adalora_init_r for full in full_targets})  # type: ignore[misc]
    inner = model.base_model.model if isinstance(model, peft.PeftModel) else model
    shapes = {full: _shape(inner.get_submodule(full)) for full in full_targets}

    # ---- optimiser: LoRA parameters (or every weight, for full-ft) at lr, head (modules_to_save copies) at head_lr
    lora_params, head_params_list = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (lora_params if ("lora_" in name or method == "full-ft") else head_params_list).append(p)
    if not lora_params and method != "base-model":
        raise AdaRankError("no trainable LoRA parameters after adaptation; check the targets")
    lora_params_train = sum(p.numel() for p in lora_params)
    step, loss_logits, trainer_name = 0, None, None
    if total_steps:
        groups = [{"params": lora_params, "lr": config.lr}]
        if head_params_list:
            groups.append({"params": head_params_list, "lr": config.head_learning_rate})
        optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
        warmup = int(round(config.warmup_ratio * total_steps))
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
        step = _fit(model, task, tokenizer, train, optimizer, scheduler, total_steps, config, seed, dev,
                    adalora=method == "adalora", progress=progress)
        trainer_name, loss_logits = task.trainer, task.trainer_loss
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    train_seconds = time.perf_counter() - train_start

    # ---- ranks each module ended up with, and what they cost
    if method == "adalora":
        final = _adalora_final_ranks(model, full_targets, adalora_init_r)  # type: ignore[arg-type]
    elif method in REFERENCE_METHODS:
        final = {full: 0 for full in full_targets}
    else:
        final = {full: (_rank_of(layers[full]) if full in layers else 0) for full in full_targets}
    ranks = {base_of[full]: int(r) for full, r in final.items()}
    lora_count = sum(r * (shapes[full][0] + shapes[full][1]) for full, r in final.items())
    if method not in ("adalora", *REFERENCE_METHODS) and lora_params_train != lora_count:  # a bug, not a user error
        raise RuntimeError(f"trainable LoRA parameters ({lora_params_train}) differ from sum r_i (d_in + d_out) "
                           f"= {lora_count}")

    # ---- evaluation
    eval_start = time.perf_counter()
    scores = task.evaluate(model, tokenizer, data, test, config, dev, autocast)
    eval_seconds = time.perf_counter() - eval_start

    result: dict[str, Any] = {
        "dataset": data.name,
        "task": task.name,
        "split": _jsonable(data.split),
        "model": _model_label(model_path),
        "targets": list(targets),
        "method": method,
        "rank": rank,
        "seed": int(seed),
        "ranks": ranks,
        "lora_params": int(lora_count),
        "lora_params_train": int(lora_params_train),
        "trainable_params": int(lora_params_train + sum(p.numel() for p in head_params_list)),
        "head_params": int(head_params),
        "max_rank": max(ranks.values()) if ranks else 0,
        "hparams": asdict(config),
        "metric": scores.pop("metric"),
        "test_score": float(scores.pop("score")),
        "train_examples": int(n_train),
        "train_truncated": int(getattr(train, "truncated", 0)),
        "train_dropped": int(getattr(train, "dropped", 0)),
        "test_examples": int(n_test),
        "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(eval_seconds, 3),
        "wall_seconds": 0.0,
        "steps": step,
        "loss_logits": loss_logits,
        "loss_check": None,
        "trainer": trainer_name,
        "max_grad_norm": float(config.max_grad_norm),
        "device": _device_name(dev),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "trl": trl.__version__,
    }
    result.update(_jsonable(scores))
    result.update(extra)
    result["wall_seconds"] = round(time.perf_counter() - wall_start, 3)
    return result


def _trainer_classes() -> dict[str, Any]:
    """``{Task.trainer: the trainer class}``, each subclassed with the divergence guard."""
    from transformers import Trainer
    from trl import SFTTrainer

    return {"transformers.Trainer": _guarded(Trainer), "trl.SFTTrainer": _guarded(SFTTrainer)}


def _guarded(base: type) -> type:
    """``base`` with a check, every ``CHECK_EVERY`` steps and at the last, that every loss so far was finite.

    The flag stays on the device between checks (``bool()`` waits for the GPU). ``logging_nan_inf_filter`` is off,
    but the Trainer's logged loss is not read: it averages, and the guard must see every step's loss."""

    class Guarded(base):  # type: ignore[misc, valid-type]
        #: a term added to the trainer's loss (AdaLoRA's orthogonality penalty under SFTTrainer), or None
        adarank_penalty: Any = None

        def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            out = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                       num_items_in_batch=num_items_in_batch)
            if self.adarank_penalty is None:
                return out
            if return_outputs:
                return out[0] + self.adarank_penalty(), out[1]
            return out + self.adarank_penalty()

        def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
            loss = super().training_step(model, inputs, num_items_in_batch)
            finite = torch.isfinite(loss.detach()).all()
            self._adarank_finite = finite if getattr(self, "_adarank_finite", None) is None else self._adarank_finite & finite
            step = self.state.global_step + 1  # this step's number once its optimiser step is done
            if (step % CHECK_EVERY == 0 or step == self.args.max_steps) and not bool(self._adarank_finite):
                raise AdaRankError(f"{DIVERGED_MESSAGE} by step {step}; lower the learning rate")
            return loss

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


def _adalora_callback(model: nn.Module) -> Any:
    """A callback running AdaLoRA's ``update_and_allocate(step)`` after each optimiser step and before
    ``zero_grad`` (the Trainer's ``on_optimizer_step``; its ``global_step`` counts the steps before this one)."""
    from transformers import TrainerCallback

    class AdaLoraAllocate(TrainerCallback):
        def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            model.base_model.update_and_allocate(state.global_step + 1)

    return AdaLoraAllocate()


def _fit(model: nn.Module, task: Task, tokenizer: Any, train: Batches, optimizer: Any, scheduler: Any,
         total_steps: int, config: TrainConfig, seed: int, dev: torch.device, *, adalora: bool, progress: bool) -> int:
    """Train ``model`` for ``total_steps`` optimiser steps with the task's trainer; returns the steps done.

    The optimiser and schedule are ours (param groups for ``head_lr``); clipping, bf16 autocast (CUDA only),
    the data loader and the step loop are the trainer's. Nothing is written to disk: no checkpoints, no
    reports, and the output folder is a temporary one removed afterwards."""
    import datasets
    from transformers import DataCollatorWithPadding, PrinterCallback, TrainingArguments
    from trl import SFTConfig

    kind = task.trainer
    trainer_class = _trainer_classes()[kind]
    dataset = datasets.Dataset.from_dict(task.train_columns(train))
    bars_were_off = datasets.are_progress_bars_disabled()
    if not progress:
        datasets.disable_progress_bars()  # SFTTrainer's dataset preparation maps with a bar
    try:
        with tempfile.TemporaryDirectory(prefix="adarank-train-") as out:
            common: dict[str, Any] = dict(
                output_dir=out, max_steps=total_steps, per_device_train_batch_size=config.batch_size,
                gradient_accumulation_steps=1, max_grad_norm=config.max_grad_norm, learning_rate=config.lr,
                weight_decay=config.weight_decay, seed=seed, data_seed=seed,
                bf16=bool(config.bf16 and dev.type == "cuda"), use_cpu=dev.type != "cuda",
                save_strategy="no", eval_strategy="no", logging_strategy="no", report_to="none",
                disable_tqdm=not progress, logging_nan_inf_filter=False, dataloader_num_workers=0,
                dataloader_drop_last=False, remove_unused_columns=False, label_names=["labels"])
            callbacks = [_adalora_callback(model)] if adalora else []
            if kind == "trl.SFTTrainer":
                args = SFTConfig(**common, max_length=config.max_length, completion_only_loss=True, packing=False,
                                 padding_free=False, gradient_checkpointing=False)  # SFTConfig's default is on
                trainer = trainer_class(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                        optimizers=(optimizer, scheduler), callbacks=callbacks)
                if adalora:
                    # AdaLoRA's forward adds its penalty to the model's own loss, which the fused LM head's loss
                    # replaces; add it back as PEFT computes it
                    from .tasks.completion_loss import orthogonality_penalty

                    trainer.adarank_penalty = lambda: orthogonality_penalty(model.base_model)
            else:
                args = TrainingArguments(**common)
                trainer = trainer_class(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                        data_collator=DataCollatorWithPadding(tokenizer),
                                        optimizers=(optimizer, scheduler), callbacks=callbacks)
            if args.n_gpu > 1:  # one run, one device: no DataParallel splitting the batch behind our back
                args._n_gpu = 1
            trainer.remove_callback(PrinterCallback)  # without a progress bar it would print the logs to stdout
            trainer.train()
            return int(trainer.state.global_step)
    finally:
        if not progress and not bars_were_off:
            datasets.enable_progress_bars()


def _strip_eva_key(key: str) -> str:
    """A module name from a key of EVA's state dict (which may carry PEFT's wrapper prefix)."""
    return key[len("base_model.model."):] if key.startswith("base_model.model.") else key


def _eva_batches(train: Batches, batch_size: int, seed: int, device: torch.device, min_tokens: int) -> _EvaBatches:
    """The first epoch's batches (same permutation as training, own generator), labels dropped;
    batches with fewer than ``min_tokens`` real tokens are left out (EVA would skip them forever)."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    chunks = [c for c in chunks if int(train.lengths[c].sum()) >= min_tokens]
    if not chunks:
        raise AdaRankError(f"EVA needs batches of at least {min_tokens} real tokens (round(rho x r̄)); "
                           "raise batch_size or lower eva_rho / the rank")
    return _EvaBatches(train, chunks, device)


def _capped_forward(limit: int):
    calls = {"n": 0}

    def forward(model: nn.Module, inputs: dict[str, torch.Tensor]) -> Any:
        calls["n"] += 1
        if calls["n"] > limit:
            raise AdaRankError(f"EVA's SVD did not converge within {limit} forward passes; "
                               "use more training data or a larger batch_size")
        return model(**inputs)

    return forward


def _adalora_final_ranks(model: nn.Module, full_targets: list[str], init_r: int) -> dict[str, int]:
    """Unmasked triplets per module from AdaLoRA's last rank pattern (init_r if it never pruned)."""
    pattern = model.peft_config[ADAPTER].rank_pattern or {}
    ranks = {full: init_r for full in full_targets}
    for key, keep in pattern.items():
        name = key
        for suffix in (f".lora_E.{ADAPTER}", ".lora_E"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        if name.startswith("base_model.model."):
            name = name[len("base_model.model."):]
        if name not in ranks:
            raise AdaRankError(f"AdaLoRA's rank pattern names an unknown module {key!r}")
        values = keep.view(-1).tolist() if isinstance(keep, torch.Tensor) else list(keep)
        ranks[name] = int(sum(bool(v) for v in values))
    return ranks


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["METHODS", "REFERENCE_METHODS", "TrainConfig", "check_lora_layout", "head_module_names", "macro_f1", "run_one",
           "set_seeds"]
