"""The size of the pieces a file too large for one device call travels in (issue 13's GGUF, 253 MB).

Every call carries the working tree as well, whose records grow from one session to the next, and the call with
the last piece carries the other folders of the run too (wheel, data, tokenizer). So the piece size that fits
moves: on 2026-12-02, 36 MiB pieces put the last call at 63.6 MiB and 37 MiB fitted; later that day a 36 MiB
piece's call was refused, because the device tool counts the tree as it lies on disk (2,546 files: 27.6 MiB of
content, 31.3 MiB on disk), so TREE_BYTES and EXTRA_BYTES should be disk usage (`du -B1`), as
prepare_decoder_carry.sh passes them. This picks the largest whole-MiB piece (the fewest calls) with which every
call stays within the limit.

    python benchmarks/piece_size.py FILE_BYTES TREE_BYTES EXTRA_BYTES [--limit-mib 63] [--max-pieces 10]
"""

from __future__ import annotations

import argparse
import math
import sys

MIB = 2**20


def piece_mib(size: int, tree: int, extras: int, limit: int = 63 * MIB, max_pieces: int = 10) -> int | None:
    """The largest piece size in MiB such that tree + piece and tree + last piece + extras both fit in ``limit``,
    in at most ``max_pieces`` pieces (the staging folders are named by one digit); None when none does."""
    for mib in range(limit // MIB, 0, -1):
        n = math.ceil(size / (mib * MIB))
        last = size - (n - 1) * mib * MIB
        if n <= max_pieces and tree + mib * MIB <= limit and tree + last + extras <= limit:
            return mib
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("size", type=int, help="bytes of the file to split")
    p.add_argument("tree", type=int, help="bytes the working tree takes on disk, carried by every call")
    p.add_argument("extras", type=int, help="bytes on disk of the folders carried with the last piece")
    p.add_argument("--limit-mib", type=int, default=63, help="what one call may carry, in MiB (64 allowed, 1 spare)")
    p.add_argument("--max-pieces", type=int, default=10, help="most pieces (one-digit folder names: 10)")
    a = p.parse_args(argv)
    mib = piece_mib(a.size, a.tree, a.extras, a.limit_mib * MIB, a.max_pieces)
    if mib is None:
        print(f"no piece size fits: {a.tree / MIB:.1f} MiB of working tree and {a.extras / MIB:.1f} MiB of carried "
              f"folders leave too little of {a.limit_mib} MiB for {a.size / MIB:.1f} MiB in {a.max_pieces} pieces; "
              "carry less with the last piece, or fewer records in the working tree", file=sys.stderr)
        return 2
    print(mib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
