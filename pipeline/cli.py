"""``covr-datagen``: the command-line entry point. Each sub-command lives in its own module and
registers itself here through a ``register(subparsers)`` function."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: modules providing sub-commands, in the order they appear in ``--help``
COMMAND_MODULES = [
    "covr_datagen.pipeline.commands.build",
    "covr_datagen.pipeline.commands.demo",
    "covr_datagen.pipeline.commands.config",
    "covr_datagen.mtg_llm.cli",
    "covr_datagen.pipeline.commands.variants",
    "covr_datagen.pipeline.commands.export",
    "covr_datagen.pipeline.commands.report",
]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (the usage is in ``--help``), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="covr-datagen",
        description="Build composed-retrieval training triplets from captioned corpora.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The sub-command parser registered as ``name``."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _split_unchecked(argv: list[str]) -> tuple[list[str], list[str]]:
    """``argv`` before a bare ``--``, and the Beam options after it (passed on unchecked)."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    argv, unchecked = _split_unchecked(list(sys.argv[1:] if argv is None else argv))
    args, unknown = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if (unknown or unchecked) and not getattr(args, "accepts_beam_args", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown + unchecked)}")
    try:
        if unknown:  # Beam drops options it does not know: a typo would silently do nothing
            from covr_datagen.pipeline.run.beam_options import check_beam_args

            own = _command_parser(parser, args.command)
            check_beam_args(unknown, [s for a in own._actions for s in a.option_strings])
        if unknown or unchecked:
            args.beam_args = list(getattr(args, "beam_args", []) or []) + unknown + unchecked
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as exc:  # user errors: one clear line
        if args.verbose:
            raise
        print(f"covr-datagen {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
