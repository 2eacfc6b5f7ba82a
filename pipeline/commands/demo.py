"""``covr-datagen demo``: the whole pipeline on the bundled demo corpus (placeholder until the
media and report stages land)."""

from __future__ import annotations

import argparse
from importlib import resources


def demo_corpus_path() -> str:
    """Path of the demo corpus shipped with the package."""
    return str(resources.files("pipeline") / "data" / "demo_corpus.csv")


def register(sub) -> None:
    from pipeline.commands.build import add_build_arguments

    parser = sub.add_parser("demo", help="run the pipeline on the bundled demo corpus")
    parser.add_argument("--out", default="out/demo", help="run directory (default out/demo)")
    add_build_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pipeline.commands import build

    args.corpus, args.format = demo_corpus_path(), "webvid"
    for name in ("id_col", "caption_col", "media_col", "corpus_name", "media_kind"):
        setattr(args, name, None)
    args.corpus_name = "demo"
    return build.main(args)
