"""Causal-LM fine-tuning on (prompt, completion) pairs, scored by greedy decoding.

Decisions
---------
* **Tokenisation.** Prompt and completion are tokenised separately and concatenated, so the
  prompt a test example is decoded from has exactly the tokens the model was trained on. The
  prompt gets the special tokens the tokenizer puts in front of a text (Gemma's and Llama's BOS;
  nothing for GPT-2; found by comparing an encoding with and without special tokens), the
  completion ends with EOS so the model learns to stop. With ``chat_template`` the prompt is the
  tokenizer's chat template of one user turn with the generation prompt added.
* **Loss** on the completion's tokens (and its EOS) only; prompt and padding are ``-100``.
  Training runs in TRL's ``SFTTrainer`` on the pre-tokenised ``input_ids`` with a ``completion_mask``
  and ``completion_only_loss=True``: its collator right-pads the batches (positions start at 0 for
  every row) and masks prompt and padding, and its fused LM head computes the loss from the
  labelled tokens' log-probabilities without keeping full-vocabulary logits.
* **Too long.** An example longer than ``max_length`` loses tokens from the *front* of its prompt
  (the cue before the completion is kept); one whose completion alone does not fit is left out of
  training, and an evaluation prompt is left-truncated so that ``max_new_tokens`` still fit. Both
  counts are recorded; more than 5 % of the training set left out, or more than 5 % of the
  evaluation prompts truncated, is an error (raise ``max_length``).
* **Evaluation**: left-padded batches, ``generate`` with greedy decoding, at most
  ``max_new_tokens`` (the dataset's, capped by the config's), cut at the first EOS, decoded
  without special tokens and scored with the dataset's metric (:mod:`adarank.compare.metrics`).
  Where that metric reads only the first non-blank line, a row also stops at the end of that line
  (:mod:`~adarank.compare.tasks.line_stop`): the score is the same, the rambling is not decoded.
  The record's ``decode_stop`` says which rule ran.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import AdaRankError
from ..datasets.base import GenerationData
from .registry import register
from .base import FUSED_LM_HEAD, Task

#: the label of a token outside the loss (prompt, padding)
IGNORE = -100

#: share of the training set that may be left out for not fitting max_length
MAX_DROPPED_SHARE = 0.05


def special_prefix(tokenizer: Any) -> list[int]:
    """The token ids the tokenizer puts before a text's own tokens (e.g. BOS), found empirically."""
    probe = "hello world"
    bare = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    full = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(bare) + 1):
        if full[start:start + len(bare)] == bare:
            return full[:start]
    return []


def eos_id(tokenizer: Any) -> int:
    for attr in ("eos_token_id", "sep_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    raise AdaRankError("the tokenizer has no EOS (or SEP) token to end completions with; use a causal-LM tokenizer")


class PromptEncoder:
    """Token ids of prompts (with the tokenizer's leading special tokens or a chat template)."""

    def __init__(self, tokenizer: Any, chat_template: bool) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        if chat_template and not getattr(tokenizer, "chat_template", None):
            raise AdaRankError("chat_template is set but the tokenizer has no chat template; "
                               "drop --chat-template or use an instruction-tuned model's tokenizer")
        self.prefix = [] if chat_template else special_prefix(tokenizer)

    def __call__(self, prompt: str) -> list[int]:
        if self.chat_template:
            ids = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                     add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            return [int(i) for i in ids]
        return self.prefix + list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])


def _left_truncate(ids: list[int], keep: int, prefix: int) -> list[int]:
    """``ids`` cut to ``keep`` tokens by dropping tokens right after its ``prefix`` leading ones."""
    if len(ids) <= keep:
        return ids
    return ids[:prefix] + ids[len(ids) - (keep - prefix):]


def _padded(rows: Sequence[list[int]], fill: int, *, left: bool) -> dict[str, torch.Tensor]:
    """``rows`` padded with ``fill`` to the longest (on the left for decoding, on the right for training),
    with the attention mask of the real tokens."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), fill, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, seq in enumerate(rows):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return {"input_ids": ids, "attention_mask": mask}


class TrainingPairs:
    """(prompt, completion) pairs tokenised once; right-padded batches with completion-only labels."""

    def __init__(self, tokenizer: Any, prompts: Sequence[str], completions: Sequence[str], max_length: int,
                 chat_template: bool = False) -> None:
        encode = PromptEncoder(tokenizer, chat_template)
        end = eos_id(tokenizer)
        self.pad_id = int(tokenizer.pad_token_id)
        self.ids: list[list[int]] = []
        self.labels: list[list[int]] = []
        self.truncated = self.dropped = 0
        for prompt, completion in zip(prompts, completions):
            target = list(tokenizer(completion, add_special_tokens=False)["input_ids"]) + [end]
            prompt_ids = encode(prompt)
            room = max_length - len(target)
            if room < len(encode.prefix) + 1:
                self.dropped += 1
                continue
            if len(prompt_ids) > room:
                prompt_ids = _left_truncate(prompt_ids, room, len(encode.prefix))
                self.truncated += 1
            self.ids.append(prompt_ids + target)
            self.labels.append([IGNORE] * len(prompt_ids) + target)
        self.lengths = np.array([len(x) for x in self.ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, index: Sequence[int], device: torch.device, *, with_labels: bool = True) -> dict[str, torch.Tensor]:
        idx = [int(i) for i in index]
        out = _padded([self.ids[i] for i in idx], self.pad_id, left=False)
        if with_labels:
            out["labels"] = _padded([self.labels[i] for i in idx], IGNORE, left=False)["input_ids"]
        return {k: v.to(device) for k, v in out.items()}


class TestPrompts:
    __test__ = False  # a data class, not a pytest test class

    """Evaluation prompts tokenised once (left-truncated so ``max_new_tokens`` fit); left-padded batches."""

    def __init__(self, tokenizer: Any, prompts: Sequence[str], max_length: int, max_new_tokens: int,
                 chat_template: bool = False) -> None:
        encode = PromptEncoder(tokenizer, chat_template)
        self.pad_id = int(tokenizer.pad_token_id)
        keep = max(len(encode.prefix) + 1, max_length - max_new_tokens)
        self.keep = keep  # prompt tokens that fit beside the decoding budget
        self.ids, self.truncated = [], 0
        for prompt in prompts:
            ids = encode(prompt)
            if len(ids) > keep:
                ids = _left_truncate(ids, keep, len(encode.prefix))
                self.truncated += 1
            self.ids.append(ids)
        self.lengths = np.array([len(x) for x in self.ids], dtype=np.int64)
        self.max_new_tokens = max_new_tokens

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, index: Sequence[int], device: torch.device, *, with_labels: bool = True) -> dict[str, torch.Tensor]:
        out = _padded([self.ids[int(i)] for i in index], self.pad_id, left=True)
        return {k: v.to(device) for k, v in out.items()}


@torch.no_grad()
def greedy_decode(model: nn.Module, tokenizer: Any, prompts: TestPrompts, max_new_tokens: int, batch_size: int,
                  device: torch.device, autocast: dict[str, Any], *, stop_at_line_end: bool = False) -> list[str]:
    """Greedy completions of every prompt, in prompt order, cut at the first EOS; with ``stop_at_line_end``
    a row also stops after the line break that ends its first non-blank line."""
    from transformers import StoppingCriteriaList

    from .line_stop import LineStop, line_table

    model.eval()
    end = eos_id(tokenizer)
    table = line_table(tokenizer, int(model.get_output_embeddings().weight.shape[0])) if stop_at_line_end else None
    order = np.argsort(prompts.lengths, kind="stable")
    texts: list[str] = [""] * len(prompts)
    for start in range(0, len(prompts), batch_size):
        idx = order[start:start + batch_size]
        batch = prompts.batch(idx, device)
        stop = StoppingCriteriaList([LineStop(table)]) if table is not None else None
        with torch.autocast(**autocast):
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                 eos_token_id=end, pad_token_id=prompts.pad_id, temperature=None, top_p=None,
                                 top_k=None, stopping_criteria=stop)
        new = out[:, batch["input_ids"].shape[1]:].cpu().tolist()
        for i, tokens in zip(idx, new):
            if end in tokens:
                tokens = tokens[:tokens.index(end)]
            texts[int(i)] = tokenizer.decode(tokens, skip_special_tokens=True)
    return texts


class Generation(Task):
    name = "generation"
    peft_task_type = "CAUSAL_LM"
    trainer = "trl.SFTTrainer"
    trainer_loss = FUSED_LM_HEAD
    help = "causal-LM SFT on (prompt, completion) pairs, loss on the completion; greedy decoding scored by the dataset's metric"

    def data_type(self) -> type:
        return GenerationData

    def sizes(self, data: GenerationData) -> tuple[int, int]:  # type: ignore[override]
        empty = [i for i, c in enumerate(data.train_completions) if not str(c).strip()]
        if empty:
            raise AdaRankError(f"training completion {empty[0]} of dataset {data.name!r} is empty; "
                               "every example needs a completion to learn")
        from ..metrics import METRICS

        if data.metric not in METRICS:
            raise AdaRankError(f"dataset {data.name!r} asks for metric {data.metric!r}; known: {', '.join(METRICS)}")
        return len(data.train_prompts), len(data.test_prompts)

    def load_model(self, model_path: str, data: Any, dtype_kwarg: str) -> nn.Module:
        from ...loading import load_model

        from transformers import AutoModelForCausalLM

        model = load_model(model_path, dtype="fp32", device="cpu", model_class=AutoModelForCausalLM)
        model.generation_config.do_sample = False  # a model's sampling defaults must not leak into greedy evaluation
        return model

    def train_columns(self, train: TrainingPairs) -> dict[str, list]:  # type: ignore[override]
        """Pre-tokenised ``input_ids`` with a ``completion_mask`` (1 on the completion and its EOS): SFTTrainer
        keeps the tokens as they are and, with ``completion_only_loss``, turns the mask into the labels."""
        masks = [[0 if label == IGNORE else 1 for label in labels] for labels in train.labels]
        return {"input_ids": [list(ids) for ids in train.ids], "completion_mask": masks}

    def encode(self, tokenizer: Any, data: GenerationData, config: Any, split: str) -> Any:  # type: ignore[override]
        if split == "train":
            pairs = TrainingPairs(tokenizer, data.train_prompts, data.train_completions, config.max_length,
                                  config.chat_template)
            if pairs.dropped > MAX_DROPPED_SHARE * len(data.train_prompts):
                raise AdaRankError(f"{pairs.dropped} of {len(data.train_prompts)} training completions of "
                                   f"{data.name!r} do not fit max_length={config.max_length} tokens; raise max_length")
            if not len(pairs):
                raise AdaRankError(f"no training example of {data.name!r} fits max_length={config.max_length}")
            return pairs
        budget = self.max_new_tokens(data, config, tokenizer)
        prompts = TestPrompts(tokenizer, data.test_prompts, config.max_length, budget, config.chat_template)
        if prompts.truncated > MAX_DROPPED_SHARE * len(prompts):
            # decoded from their tail alone, these prompts would score the truncation, not the model
            raise AdaRankError(f"{prompts.truncated} of {len(prompts)} evaluation prompts of {data.name!r} are longer "
                               f"than the {prompts.keep} tokens that max_length={config.max_length} leaves beside "
                               f"max_new_tokens={budget}; raise max_length (to at least {budget} + the longest "
                               "prompt) or lower max_new_tokens")
        return prompts

    @staticmethod
    def max_new_tokens(data: GenerationData, config: Any, tokenizer: Any) -> int:
        """Decoding budget: the dataset's cap, raised to fit the longest reference in *this* tokenizer's
        tokens (plus EOS and a little room), then capped by the config. A words-based cap alone cut
        ' objective' to ' objecti' under a tokenizer that splits finer than expected."""
        longest = max((len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in data.test_completions),
                      default=0)
        budget = max(int(data.max_new_tokens), longest + 2)
        cap = getattr(config, "max_new_tokens", None)
        return int(min(budget, cap) if cap else budget)

    def evaluate(self, model: nn.Module, tokenizer: Any, data: GenerationData, test: TestPrompts,  # type: ignore[override]
                 config: Any, device: torch.device, autocast: dict[str, Any]) -> dict[str, Any]:
        from ..metrics import get_metric, score

        budget = test.max_new_tokens
        first_line = get_metric(data.metric).reads_first_line
        predictions = greedy_decode(model, tokenizer, test, budget, config.eval_batch_size, device, autocast,
                                    stop_at_line_end=first_line)
        figures = score(data.metric, predictions, list(data.test_completions))
        score = float(figures["score"])
        extra = {f"test_{k}": float(v) for k, v in figures.items() if k != "score"}
        return {"score": score, "metric": data.metric, **extra, "max_new_tokens": budget,
                "decode_stop": "eos or first line's end" if first_line else "eos",
                "test_prompts_truncated": test.truncated,
                "examples": [{"prompt": data.test_prompts[i], "reference": data.test_completions[i],
                              "prediction": predictions[i]} for i in range(min(5, len(predictions)))]}


register(Generation())
