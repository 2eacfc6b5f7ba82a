"""``covr-datagen``: the command-line entry point. Each sub-command lives in its own module and
registers itself here through a ``register(subparsers)`` function."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: modules providing sub-commands, in the order they appear in ``--help``
COMMAND_MODULES = [
    "pipeline.commands.build",
    "pipeline.commands.demo",
    "pipeline.commands.config",
    "mtg_llm.cli",
    "pipeline.commands.variants",
    "pipeline.commands.export",
    "pipeline.commands.report",
]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="covr-datagen",
        description="Build composed-retrieval training triplets from captioned corpora.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args, unknown = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if unknown and not getattr(args, "accepts_beam_args", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown:
        args.beam_args = list(getattr(args, "beam_args", []) or []) + unknown
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as exc:  # user errors: one clear line
        if args.verbose:
            raise
        print(f"covr-datagen {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
