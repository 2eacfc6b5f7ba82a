"""Write a seeded synthetic WebVid-style corpus CSV (see :mod:`pipeline.devtools.synth` for the model).

Example::

    .venv/bin/python scripts/synth_corpus.py --captions 2000000 --seed 0 --out /tmp/synth_2m.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from covr_datagen.pipeline.devtools.synth import SynthConfig, write_corpus  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Every :class:`SynthConfig` field is a ``--flag`` (underscores as dashes)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="CSV file to write")
    for f in dataclasses.fields(SynthConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "seed_csv":
            ap.add_argument(flag, default=f.default,
                            help="seed captions (WebVid CSV); 'none' for the built-in list")
        else:
            ap.add_argument(flag, type=type(f.default), default=f.default)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(SynthConfig)}
    if str(values["seed_csv"]).lower() == "none":
        values["seed_csv"] = None
    start = time.monotonic()
    rows = write_corpus(args.out, SynthConfig(**values))
    print(f"wrote {rows:,} rows ({values['captions']:,} generated captions) to {args.out} "
          f"in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
