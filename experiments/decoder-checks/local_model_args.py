"""The options every CPU check on the materialised decoder shares, so that their defaults cannot drift apart.

The checks (``line_stop_check.py``, ``completion_loss_memory.py``) run Gemma 3 270M as ``materialize_gguf`` writes
it, on an NLTK data folder, on the CPU; both folders are arguments, never paths fixed in the script.
"""

from __future__ import annotations

import argparse


def add_local_model_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--model``, ``--data-dir`` (both required) and ``--threads``, the same in every such check."""
    parser.add_argument("--model", required=True, help="a causal-LM folder (e.g. materialize_gguf's)")
    parser.add_argument("--data-dir", required=True, help="an NLTK data folder with the corpora")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
