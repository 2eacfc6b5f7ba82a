"""``covr-datagen build``: run the pipeline on a corpus into a run directory."""

from __future__ import annotations

import argparse
import os
import sys
import time

from covr_datagen.mtg_llm.engines import ENDPOINT_APIS, ENGINES, MTG_MODES
from covr_datagen.pipeline.corpus.layout import FORMATS
from covr_datagen.pipeline.mining import METHODS
from covr_datagen.pipeline.text.encoders import LOCAL_WORKERS_ENV


def _count(minimum: int):
    """argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``build`` and ``demo``."""
    parser.add_argument("--config", help="YAML/JSON config file; `covr-datagen config` prints "
                                         "every key with its default")
    parser.add_argument("--mining", choices=METHODS, help="mining method")
    parser.add_argument("--max-word-diff", type=int, metavar="K",
                        help="mine caption pairs differing in 1..K words, K = 1-3 (default 1: "
                        "the paper's one-word pairs)")
    parser.add_argument("--allow-length-change", action="store_true",
                        help="also pair captions of different lengths within token edit "
                        "distance --max-word-diff")
    parser.add_argument("--text-encoder", help="text encoder id/path or open_clip:ARCH:PRETRAINED")
    parser.add_argument("--media-root", help="folder holding the media files")
    parser.add_argument("--no-media", action="store_true",
                        help="text-only mode: pick media pairs without decoding media")
    parser.add_argument("--mtg-engine", choices=ENGINES,
                        help="text generator (default hf: the built-in SmolLM2 + the shipped "
                        "adapter; rules: the paper's templates; vllm: vLLM or an endpoint)")
    parser.add_argument("--mtg-endpoint", help="OpenAI-compatible completions URL (vllm engine)")
    parser.add_argument("--mtg-endpoint-api", choices=ENDPOINT_APIS,
                        help="endpoint API: /v1/completions (default) or /v1/chat/completions")
    parser.add_argument("--mtg-mode", choices=MTG_MODES,
                        help="edit (default): one short modification text per pair; dense: also "
                        "edit_dense, a complete description of every change (docs/MTG.md)")
    parser.add_argument("--mtg-base-model", help="base causal LM: built-in name (smollm2-135m, "
                        "the default), hub id or path (hf and vllm engines)")
    parser.add_argument("--mtg-adapter", help="LoRA adapter folder from `covr-datagen mtg train`, "
                        "built-in name (smollm2-135m-mtg, the default) or 'none'")
    parser.add_argument("--mtg-model-cache", metavar="DIR", help="where built-in models are "
                        "converted once (default ~/.cache/covr-datagen/models)")
    parser.add_argument("--metadata", help="per-media metadata (CleanVid-15M map or CSV/Parquet); "
                        "its r18 flag drops mature content before mining")
    parser.add_argument("--profanity-decisions", metavar="FILE",
                        help="review decisions for captions better-profanity flagged: a previous "
                        "run's profanity_review.csv with its decision column set to keep or drop")
    parser.add_argument("--force", action="store_true", help="recompute every stage")
    parser.add_argument("--until", metavar="STAGE", help="stop after this stage")
    parser.add_argument("--stage-retries", type=_count(0), default=1, metavar="N",
                        help="rerun a stage whose counts do not reconcile (input != kept + "
                        "dropped; nothing of it is committed) up to N times (default 1)")
    parser.add_argument("--workers", type=_count(1), metavar="N",
                        help="DirectRunner multi-process mode with N worker processes (an error "
                        "with any other --runner)")
    parser.add_argument("--allow-empty", action="store_true",
                        help="go on when the read stage keeps (nearly) no rows (under 5%%; "
                        "usually a wrong --format); by default the build stops there, exit 2")
    parser.set_defaults(accepts_beam_args=True)


def register(sub) -> None:
    parser = sub.add_parser(
        "build", help="corpus -> caption pairs -> media pairs -> triplets (a run directory)",
        description="Run the covr-datagen pipeline. Other --options are passed to Apache Beam "
                    "as pipeline options (e.g. --runner DataflowRunner --project P ...); an option "
                    "Beam does not define either is an error, unless it comes after a bare --.")
    parser.add_argument("--corpus", required=True, help="corpus file (local path or gs://...)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="corpus format")
    parser.add_argument("--out", required=True, help="run directory to write")
    parser.add_argument("--id-col", help="generic formats: media id column (default: row number)")
    parser.add_argument("--caption-col", help="generic formats: caption column (default: caption)")
    parser.add_argument("--media-col", help="generic formats: column holding a media path")
    parser.add_argument("--description-col", help="column holding a long description of each "
                        "media item (e.g. from a video captioner); used by --mtg-mode dense")
    parser.add_argument("--corpus-name", help="name recorded in outputs (default: file stem)")
    parser.add_argument("--media-kind", choices=["video", "image"],
                        help="default: image for cc3m, video otherwise")
    add_build_arguments(parser)
    parser.set_defaults(func=main)


def config_from_args(args: argparse.Namespace):
    """Load the config file and apply command-line overrides."""
    from covr_datagen.mtg_llm.models import adapter_option
    from covr_datagen.pipeline.config import load_config

    overrides: dict = {"corpus": {}, "mining": {}, "text_encoder": {}, "media": {}, "mtg": {},
                       "caption_filters": {}}
    for key, section, name in (("format", "corpus", "format"), ("id_col", "corpus", "id_col"),
                               ("caption_col", "corpus", "caption_col"),
                               ("media_col", "corpus", "media_col"),
                               ("description_col", "corpus", "description_col"),
                               ("corpus_name", "corpus", "name"),
                               ("media_kind", "corpus", "media_kind"),
                               ("mining", "mining", "method"),
                               ("max_word_diff", "mining", "max_word_diff"),
                               ("text_encoder", "text_encoder", "model"),
                               ("media_root", "media", "media_root"),
                               ("mtg_engine", "mtg", "engine"),
                               ("mtg_endpoint", "mtg", "endpoint"),
                               ("mtg_endpoint_api", "mtg", "endpoint_api"),
                               ("mtg_mode", "mtg", "mode"),
                               ("mtg_base_model", "mtg", "base_model"),
                               ("mtg_adapter", "mtg", "adapter"),
                               ("mtg_model_cache", "mtg", "model_cache"),
                               ("metadata", "caption_filters", "metadata"),
                               ("profanity_decisions", "caption_filters", "profanity_decisions")):
        value = getattr(args, key, None)
        if value is not None:
            overrides[section][name] = value
    if "adapter" in overrides["mtg"]:
        overrides["mtg"]["adapter"] = adapter_option(overrides["mtg"]["adapter"])
    if getattr(args, "allow_length_change", False):
        overrides["mining"]["allow_length_change"] = True
    if getattr(args, "no_media", False):
        overrides["media"]["enabled"] = False
    return load_config(args.config, {k: v for k, v in overrides.items() if v})


def beam_args_from(args: argparse.Namespace) -> list[str]:
    """Beam pipeline options: pass-through ones, ``--runner`` short names resolved, plus the
    ``--workers`` sugar (:func:`covr_datagen.pipeline.run.runner_options.resolve_runner`)."""
    from covr_datagen.pipeline.run.runner_options import resolve_runner

    workers = getattr(args, "workers", None)
    beam_args = resolve_runner(list(getattr(args, "beam_args", []) or []), workers)
    if workers:
        # worker processes inherit it: their CPU models split the cores instead of each taking all
        os.environ[LOCAL_WORKERS_ENV] = str(workers)
    return beam_args


def main(args: argparse.Namespace) -> int:
    from covr_datagen.pipeline.run.build import BuildRequest, run_build

    config = config_from_args(args)
    start = time.monotonic()
    reports = run_build(BuildRequest(args.corpus, args.out, beam_args_from(args), args.force,
                                     args.until, args.stage_retries, args.allow_empty), config)
    print(f"build: {len(reports)} stage(s) complete in {time.monotonic() - start:.1f}s; "
          f"run directory: {args.out} (manifest: {args.out}/manifest.json)", file=sys.stderr)
    return 0
