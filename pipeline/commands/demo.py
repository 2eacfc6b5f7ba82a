"""``covr-datagen demo``: the whole pipeline on the bundled demo corpus.

1. read the bundled corpus (``pipeline/data/demo_corpus.csv``, written by
   ``scripts/make_demo_corpus.py``) into ``RUN/records``;
2. write a small synthetic mp4 clip per video under ``RUN/media/`` (WebVid layout), since the
   demo ships no real videos (see :mod:`covr_datagen.pipeline.devtools.synthetic_media`);
3. build everything else with ``--media-root RUN/media``;
4. write the HTML report and print where it is.

With ``--mtg-mode dense`` the demo first writes ``RUN/demo_corpus_described.csv``: the corpus with
a ``description`` column saying what each synthetic clip shows
(:func:`covr_datagen.pipeline.devtools.synthetic_media.clip_description`), and builds from it
with ``corpus.description_col: description``, so the dense texts have descriptions to use.
"""

from __future__ import annotations

import argparse
import csv
import sys
from importlib import resources
from pathlib import Path

from covr_datagen.pipeline.config import Config


def demo_corpus_path() -> str:
    """Path of the demo corpus shipped with the package."""
    return str(resources.files("covr_datagen.pipeline") / "data" / "demo_corpus.csv")


def write_described_corpus(corpus: str, out: Path) -> str:
    """Copy the WebVid-layout ``corpus`` to ``out`` with a ``description`` column appended: the
    description of each record's synthetic clip. Records that are not well-formed (the demo's
    deliberate bad rows) are copied unchanged, so the read stage still rejects them."""
    from covr_datagen.pipeline.corpus.records import RecordRule, record_ends, split_csv_record
    from covr_datagen.pipeline.devtools.synthetic_media import clip_description

    data = Path(corpus).read_bytes()
    header, _, body = data.partition(b"\n")
    names = split_csv_record(header.decode("utf-8").rstrip("\r"))
    rule = RecordRule(quoted=True, columns=len(names))
    lines, start = [header.rstrip(b"\r").decode("utf-8") + ",description"], 0
    for end in record_ends(body, rule).tolist():
        record = body[start:end].rstrip(b"\r").decode("utf-8")
        start = end + 1
        try:
            fields = split_csv_record(record)
        except csv.Error:
            fields = []
        if len(fields) == len(names):
            description = clip_description(fields[names.index("name")].strip())
            record += ',"' + description.replace('"', '""') + '"'
        lines.append(record)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(out)


def run_demo(out: str | Path, config: Config, beam_args: list[str] | None = None,
             force: bool = False, corpus: str | None = None, stage_retries: int = 1,
             until: str | None = None, allow_empty: bool = False):
    """Build the demo corpus into ``out`` with synthetic clips (up to stage ``until``, as
    ``build --until``); return the :class:`RunDir`."""
    from covr_datagen.pipeline.core.rundir import RunDir
    from covr_datagen.pipeline.devtools.synthetic_media import write_synthetic_media
    from covr_datagen.pipeline.run.build import BuildRequest, run_build

    run = RunDir(out)
    corpus = corpus or demo_corpus_path()
    config.corpus.format = "webvid"
    if config.corpus.name is None:
        config.corpus.name = "demo"
    with run.writing():  # one lock over both builds and the clips written between them
        if config.mtg.mode == "dense" and config.corpus.description_col is None:
            corpus = write_described_corpus(corpus, run.root / "demo_corpus_described.csv")
            config.corpus.description_col = "description"
        run_build(BuildRequest(corpus, str(run.root), list(beam_args or []), force, "read",
                               stage_retries, allow_empty), config)
        if until == "read":
            return run
        media_root = run.root / "media"
        written = write_synthetic_media(run.read_table("records").to_pylist(), str(media_root))
        if written:
            print(f"demo: wrote {written} synthetic clips under {media_root}", file=sys.stderr)
        if config.media.media_root is None:
            config.media.media_root = str(media_root)
        run_build(BuildRequest(corpus, str(run.root), list(beam_args or []), False, until,
                               stage_retries, allow_empty), config)
    return run


def register(sub) -> None:
    from covr_datagen.pipeline.commands.build import add_build_arguments

    parser = sub.add_parser("demo", help="run the pipeline on the bundled demo corpus, then report")
    parser.add_argument("--out", default="out/demo", help="run directory (default out/demo)")
    add_build_arguments(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from covr_datagen.pipeline.commands.build import beam_args_from, config_from_args
    from covr_datagen.pipeline.products.report import write_report

    args.format = "webvid"
    config = config_from_args(args)
    run = run_demo(args.out, config, beam_args_from(args), args.force,
                   stage_retries=args.stage_retries, until=args.until, allow_empty=args.allow_empty)
    files = write_report(run)
    print(f"demo: run directory {run.root}", file=sys.stderr)
    print(f"demo: report written to {files.html}")
    return 0
