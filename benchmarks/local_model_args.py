"""The options every CPU check on the materialised decoder shares, so that their defaults cannot drift apart.

The checks (``line_stop_check.py``, ``completion_loss_memory.py``) run Gemma 3 270M as ``materialize_gguf`` writes
it on the development machine, on the shared NLTK corpora, with the machine's two cores.
"""

from __future__ import annotations

import argparse

DEFAULT_MODEL = "/tmp/gemma-3-270m-fp32"
DEFAULT_DATA_DIR = "../shared/datasets/nltk_data"


def add_local_model_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--model``, ``--data-dir`` and ``--threads`` with the defaults every such check uses."""
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a causal-LM folder (e.g. materialize_gguf's)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="the NLTK corpora")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
