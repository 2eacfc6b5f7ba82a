"""Build a tiny random LLaMA + locally trained BPE tokenizer: ``python scripts/make_tiny_llm.py OUT_DIR``."""

from __future__ import annotations

import argparse
import sys

from covr_datagen.pipeline.devtools.tiny_llm import make_tiny_llm  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out_dir")
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--hidden-size", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = make_tiny_llm(args.out_dir, vocab_size=args.vocab_size, hidden_size=args.hidden_size,
                        layers=args.layers, seed=args.seed)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"tiny LLaMA + tokenizer written to {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
