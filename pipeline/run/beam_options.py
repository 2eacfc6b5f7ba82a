"""Which pass-through options Apache Beam knows, so that a typo is an error, not a no-op.

``build`` and ``demo`` pass every option they do not define to Beam as pipeline options. Beam
drops options it does not know with a log warning, so ``--no-medai`` used to run with media on.
:func:`check_beam_args` refuses any option that neither the command nor one of Beam's
``PipelineOptions`` classes defines (including those of the runner named by ``--runner``),
suggesting the closest known spelling. Options after a bare ``--`` are not checked (for
runner-side options Beam's Python SDK does not define, e.g. some Flink/Dataflow flags).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Sequence


def _runner_module(runner: str) -> str | None:
    """Module defining the Beam runner named ``runner`` (short or qualified name), if any."""
    from covr_datagen.pipeline.run.runner_options import runner_class_path

    qualified = runner_class_path(runner)
    return qualified.rsplit(".", 1)[0] if qualified and "." in qualified else None


def _runner_name(args: Sequence[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(args):
            return args[i + 1]
    return None


def _beam_parser(args: Sequence[str]):
    """An argument parser holding every Beam pipeline option (and the named runner's)."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    class RaisingParser(_BeamArgumentParser):
        def error(self, message):  # argparse would print usage and exit
            raise ValueError(f"Beam pipeline option: {message}")

    runner = _runner_name(args)
    module = _runner_module(runner) if runner else None
    if module:
        try:  # registers the runner's own PipelineOptions subclass
            importlib.import_module(module)
        except ImportError:
            pass
    parser = RaisingParser(allow_abbrev=False)
    seen: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)
    return parser


def check_beam_args(args: Sequence[str], own_options: Sequence[str]) -> None:
    """Raise ``ValueError`` (one line, with a suggestion) for the first argument in ``args``
    that neither the command (``own_options``) nor Beam defines."""
    if not args:
        return
    parser = _beam_parser(args)
    _, unknown = parser.parse_known_args(list(args))
    if not unknown:
        return
    options = [u for u in unknown if u.startswith("-")]
    if not options:
        raise ValueError(f"unexpected argument {unknown[0]!r}")
    name = options[0].split("=", 1)[0]
    known = list(own_options) + [s for a in parser._actions for s in a.option_strings]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ValueError(f"unknown option {name}{hint} (neither covr-datagen nor Apache Beam defines "
                     "it; put runner-side options Beam does not know after a bare --)")
