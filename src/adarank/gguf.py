"""GGUF files (llama.cpp's format) as dense, trainable transformers models.

Everything goes through transformers' own GGUF loader (``from_pretrained(folder, gguf_file=name)``),
so the architectures and tokenizers it knows are the ones supported here. Scoring and LoRA need
plain floating-point ``Linear`` weights, so the weights are always dequantised to the dtype asked
for, and the quantizer transformers attaches to the model is dropped afterwards: the model no longer
is quantized, and PEFT or a Trainer must not treat it as if it were.

Dequantising a real model is slow (about a minute for Gemma 3 270M), which is why
:func:`materialize_gguf` writes it out once as an ordinary model folder that loads in a second.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import AdaRankError

SOURCE_RECORD = "adarank_gguf_source.json"


def is_gguf_path(name_or_path: str | os.PathLike) -> bool:
    return str(name_or_path).lower().endswith(".gguf")


def _require_gguf_package() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise AdaRankError(
            "reading GGUF files needs the gguf package, which is not installed; "
            "pip install 'adarank[gguf]' (or pip install 'gguf>=0.10')"
        ) from None


def _existing_file(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise AdaRankError(f"GGUF file '{path}' does not exist; give the path of a .gguf file")
    return p


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _dequantize_kwargs() -> dict[str, Any]:
    """Ask for dense weights where transformers could keep them packed.

    Newer transformers keep some architectures' GGUF blocks packed unless told otherwise; older ones
    (5.17, for one) always dequantise and have no such switch, so nothing is passed there.
    """
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    try:
        return {"quantization_config": GgufConfig(dequantize=True)}
    except TypeError:
        return {}


def _drop_quantizer(model: Any) -> None:
    """The weights are dense now; without this the model would claim to be quantized (no ``.half()``,
    no Trainer, and a ``save_pretrained`` that refuses)."""
    for marker in ("hf_quantizer", "is_quantized", "quantization_method"):
        if marker in vars(model):
            delattr(model, marker)
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "quantization_config"):
        del config.quantization_config


def load_gguf_model(path: str | os.PathLike, *, dtype: torch.dtype, model_class: Any = None) -> Any:
    """A dense ``model_class`` (default ``AutoModelForCausalLM``) from a GGUF file, in ``dtype``."""
    from transformers import AutoModelForCausalLM

    _require_gguf_package()
    p = _existing_file(path)
    cls = model_class or AutoModelForCausalLM
    try:
        model = cls.from_pretrained(str(p.parent), gguf_file=p.name, dtype=dtype, **_dequantize_kwargs())
    except (OSError, ValueError, RuntimeError, NotImplementedError, KeyError) as exc:
        raise AdaRankError(f"cannot load GGUF file '{path}': {_first_line(exc)}; "
                           "transformers reads only the architectures its GGUF loader knows") from None
    _drop_quantizer(model)
    return model


def load_gguf_tokenizer(path: str | os.PathLike) -> Any:
    """The tokenizer a GGUF file carries in its metadata, rebuilt by transformers."""
    from transformers import AutoTokenizer

    _require_gguf_package()
    p = _existing_file(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise AdaRankError(f"cannot build a tokenizer from GGUF file '{path}': {_first_line(exc)}; "
                           "pass --tokenizer PATH") from None
    check_subword_tokenizer(tokenizer, f"the tokenizer rebuilt from GGUF file '{path}'")
    return tokenizer


#: an English sentence a subword tokenizer of a large vocabulary splits into about one token per word
_TOKENIZER_PROBE = "The committee approved the proposal after a long discussion about its objectives."
#: most tokens per character that still counts as subword tokenisation (real ones give 0.15-0.3)
MAX_TOKENS_PER_CHAR = 0.5
#: a vocabulary this large exists to hold merges; below it, character-level pieces may be the design
LARGE_VOCABULARY = 5000


def check_subword_tokenizer(tokenizer: Any, what: str) -> None:
    """Refuse a tokenizer that splits plain English into (nearly) single characters.

    Seen with transformers 5.17: rebuilt Gemma 3's tokenizer from the GGUF metadata
    without its merges, so every word became characters (' objective' -> 10 tokens), prompts grew
    fivefold and label words no longer fitted the decoding budget; the same file gives one token for
    ' objective' under transformers 5.24. Fine-tuning or scoring through such a tokenizer is not the
    model a user has in mind, so it is an error, not a number. Only a large vocabulary is held to
    this: a small one (a test model's) may be character-level by design.
    """
    try:
        size = len(tokenizer)
    except TypeError:
        size = LARGE_VOCABULARY
    ids = tokenizer(_TOKENIZER_PROBE, add_special_tokens=False)["input_ids"]
    ratio = len(ids) / len(_TOKENIZER_PROBE)
    if size >= LARGE_VOCABULARY and ratio > MAX_TOKENS_PER_CHAR:
        import transformers

        raise AdaRankError(f"{what} splits English into single characters ({len(ids)} tokens for "
                           f"{len(_TOKENIZER_PROBE)} characters) under transformers {transformers.__version__}: its "
                           "merges were not rebuilt; upgrade transformers (5.24 rebuilds Gemma 3's correctly) or pass "
                           "the model's own tokenizer folder with --tokenizer")


# ------------------------------------------------------------------------------ materialising
def _source_record(path: Path, dtype: torch.dtype) -> dict[str, Any]:
    """What identifies a materialised copy: the file (name, size, mtime) and the dtype it was written in."""
    stat = path.stat()
    return {"gguf_file": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "dtype": str(dtype).replace("torch.", "")}


def _unique_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """The state dict with each shared tensor once, under its first name (the input embedding of a
    tied model), so ``from_pretrained`` re-ties it instead of missing the embedding."""
    seen: set[tuple[int, int]] = set()
    out: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen:
            continue
        seen.add(key)
        out[name] = tensor.detach().to("cpu").contiguous()
    return out


def _save_folder(model: Any, tokenizer: Any, folder: Path) -> None:
    """Weights, config and tokenizer written directly, not through ``model.save_pretrained``: that
    raised a ValueError for GGUF-loaded models in transformers 5.17."""
    from safetensors.torch import save_file

    save_file(_unique_state_dict(model), str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    config.architectures = [type(model).__name__]
    config.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


def _override_tokenizer(name_or_path: str | os.PathLike) -> Any:
    """The tokenizer a caller supplies in place of the GGUF rebuild, checked the same way."""
    from transformers import AutoTokenizer

    try:
        words = AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as exc:
        raise AdaRankError(f"cannot load the tokenizer '{name_or_path}': {_first_line(exc)}; pass a folder "
                           "that holds tokenizer.json or tokenizer_config.json") from None
    check_subword_tokenizer(words, f"the tokenizer '{name_or_path}'")
    return words


def _check_logits(original: Any, folder: Path, tokenizer: Any, model_class: Any, dtype: torch.dtype) -> None:
    """Reload the folder and compare logits on one input: a copy that differs must not be used."""
    reloaded = model_class.from_pretrained(str(folder), dtype=dtype)
    ids = tokenizer("The quick brown fox jumps over the lazy dog.", return_tensors="pt")["input_ids"][:, :32]
    with torch.no_grad():
        a = original(input_ids=ids.to(next(original.parameters()).device)).logits.float().cpu()
        b = reloaded(input_ids=ids).logits.float()
    if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-3, atol=1e-3 * max(1.0, float(a.abs().max()))):
        diff = float((a - b).abs().max()) if a.shape == b.shape else float("nan")
        raise AdaRankError(f"the folder written from the GGUF file does not reproduce its logits (max difference "
                           f"{diff:.3g}); load the GGUF file directly instead")


def materialize_gguf(gguf_path: str | os.PathLike, out_folder: str | os.PathLike, dtype: str = "bf16", *,
                     model_class: Any = None, overwrite: bool = False,
                     tokenizer: str | os.PathLike | None = None) -> Path:
    """Dequantise a GGUF file once and write an ordinary model folder that ``from_pretrained`` loads fast.

    Meant for harnesses that start many worker processes: each would otherwise spend the GGUF
    dequantisation time (about a minute for Gemma 3 270M) again. The folder holds
    ``model.safetensors``, ``config.json``, the tokenizer files and a record of the source file; it is
    checked by reloading it and comparing logits on one input, and appears under ``out_folder`` only
    once complete. A folder already materialised from the same file (path, size, mtime) in the same
    dtype is returned as it is, so a rerun costs nothing (call it once before starting the workers,
    not from each of them at the same time); another non-empty folder is refused unless ``overwrite``.

    ``tokenizer`` names a tokenizer folder (or hub id) to write into the folder instead of the one
    transformers rebuilds from the file's metadata: some transformers versions rebuild a broken one
    (see :func:`check_subword_tokenizer`), and a tokenizer saved where the rebuild works is small
    enough to carry where it does not. It is held to the same check, and recorded in the source record.
    """
    from transformers import AutoModelForCausalLM

    from .dtypes import parse_dtype

    torch_dtype = parse_dtype(dtype)
    src = _existing_file(gguf_path)
    out = Path(out_folder).expanduser()
    record = _source_record(src, torch_dtype)
    if tokenizer is not None:
        record["tokenizer"] = str(Path(tokenizer).expanduser().resolve()) if Path(tokenizer).expanduser().exists() \
            else str(tokenizer)
    if (out / SOURCE_RECORD).is_file():
        try:
            if json.loads((out / SOURCE_RECORD).read_text(encoding="utf-8")) == record:
                return out
        except (OSError, json.JSONDecodeError):
            pass
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise AdaRankError(f"'{out}' is not empty and was not materialised from '{gguf_path}' in {record['dtype']}; "
                           "choose an empty folder or pass overwrite=True")
    cls = model_class or AutoModelForCausalLM
    model = load_gguf_model(src, dtype=torch_dtype, model_class=cls).eval()
    words = _override_tokenizer(tokenizer) if tokenizer is not None else load_gguf_tokenizer(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        _save_folder(model, words, stage)
        _check_logits(model, stage, words, cls, torch_dtype)
        (stage / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out
