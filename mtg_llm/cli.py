"""``covr-datagen mtg``: ``train`` a LoRA MTG-LLM, ``generate`` texts for a CSV of caption pairs."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from covr_datagen.mtg_llm.engines import ENDPOINT_APIS, ENGINES, MTG_MODES
from covr_datagen.mtg_llm.models import BUILTIN_MODELS, DEFAULT_ADAPTER, DEFAULT_BASE_MODEL, adapter_option
from covr_datagen.mtg_llm.train import TrainArgs
from covr_datagen.pipeline.config import MtgConfig


def register(subparsers) -> None:
    """Add the ``mtg`` command and its sub-commands."""
    mtg = subparsers.add_parser("mtg", help="MTG-LLM: fine-tune and try modification-text engines")
    sub = mtg.add_subparsers(dest="mtg_command", required=True, metavar="SUBCOMMAND")

    tr = sub.add_parser("train", help="LoRA fine-tuning on the built-in data + your JSONL files",
                        description="Defaults were chosen by measurement (docs/MTG.md); "
                        "--paper-defaults takes the CoVR-2 paper's numbers instead. Options "
                        "given explicitly override either.")
    tr.add_argument("--data", nargs="*", default=[], metavar="FILE",
                    help="JSONL files (caption1/caption2/edit or InstructPix2Pix input/edit/output)")
    tr.add_argument("--no-builtin-data", action="store_true",
                    help="do not add the built-in training data (mtg_llm/data/)")
    tr.add_argument("--base-model", default=DEFAULT_BASE_MODEL,
                    help=f"built-in name ({', '.join(BUILTIN_MODELS)}), hub id or local path "
                    f"(default {DEFAULT_BASE_MODEL})")
    tr.add_argument("--out", required=True, help="folder for the adapter, tokenizer and report")
    tr.add_argument("--paper-defaults", action="store_true",
                    help="1 epoch, lr 3e-5, batch 16 x 8, 100 warm-up steps, LoRA r 8 on q/v")
    defaults = TrainArgs(base_model="", out="")
    for flag, kind, what in (
            ("--epochs", float, "passes over the training split"), ("--lr", float, "learning rate"),
            ("--batch-size", int, "micro-batch size"),
            ("--grad-accum", int, "micro-batches per optimizer step (effective batch = batch x "
                                  "accum)"),
            ("--warmup-steps", int, "linear warm-up, then constant"),
            ("--max-steps", int, "optimizer steps (overrides epochs)"),
            ("--seed", int, "data order and LoRA initialisation"), ("--lora-r", int, "LoRA rank"),
            ("--lora-alpha", int, "LoRA scaling numerator"),
            ("--val-fraction", float, "share of examples held out for the validation loss")):
        name = flag[2:].replace("-", "_")
        tr.add_argument(flag, type=kind, default=None, help=f"{what} (default {getattr(defaults, name)})")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--model-cache", metavar="DIR",
                    help="where built-in models are converted (default: ~/.cache/covr-datagen/models)")
    tr.set_defaults(func=_train)

    ge = sub.add_parser("generate", help="modification texts for a CSV of caption pairs")
    ge.add_argument("--pairs", required=True,
                    help="CSV with txt1,txt2 (word1,word2 optional: found when absent; "
                    "description1,description2 optional, used by --mode dense)")
    ge.add_argument("--mode", choices=MTG_MODES, default=MtgConfig.mode,
                    help="edit: one short text per pair; dense: a complete description of every "
                    "change (column edit_dense, docs/MTG.md)")
    ge.add_argument("--out", default="-", help="output CSV (default: stdout)")
    ge.add_argument("--engine", choices=ENGINES, default=MtgConfig.engine)
    ge.add_argument("--base-model", default=DEFAULT_BASE_MODEL,
                    help=f"built-in name, hub id or path (default {DEFAULT_BASE_MODEL})")
    ge.add_argument("--adapter", default=DEFAULT_ADAPTER,
                    help=f"adapter folder, built-in name or 'none' (default {DEFAULT_ADAPTER})")
    ge.add_argument("--model-cache", metavar="DIR",
                    help="where built-in models are converted (default: ~/.cache/covr-datagen/models)")
    ge.add_argument("--endpoint", help="OpenAI-compatible completions URL (vllm engine)")
    ge.add_argument("--endpoint-api", choices=ENDPOINT_APIS, default=MtgConfig.endpoint_api,
                    help="/v1/completions (default) or /v1/chat/completions")
    ge.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR",
                    help="environment variable holding the endpoint's API key (default "
                    "OPENAI_API_KEY; VLLM_API_KEY when it is unset)")
    ge.add_argument("--seed", type=int, default=0)
    ge.add_argument("--top-k", type=int, default=200)
    ge.add_argument("--temperature", type=float, default=0.8)
    ge.add_argument("--max-new-tokens", type=int, default=32)
    ge.add_argument("--dense-max-new-tokens", type=int, default=MtgConfig.dense_max_new_tokens)
    ge.add_argument("--batch-size", type=int, default=32)
    ge.add_argument("--concept-attempts", type=int, default=MtgConfig.concept_attempts,
                    metavar="N", help="draws per pair at most until the text names the new "
                    f"concept (default {MtgConfig.concept_attempts}; 1 = one draw)")
    ge.add_argument("--device", default="auto")
    ge.set_defaults(func=_generate)


TUNABLE = ("epochs", "lr", "batch_size", "grad_accum", "warmup_steps", "max_steps", "seed",
           "lora_r", "lora_alpha", "val_fraction")


def _train(args: argparse.Namespace) -> int:
    from covr_datagen.mtg_llm.train import TrainArgs, paper_args, train

    given = {name: getattr(args, name) for name in TUNABLE if getattr(args, name) is not None}
    common = dict(base_model=args.base_model, out=args.out, data=list(args.data),
                  include_builtin=not args.no_builtin_data, device=args.device,
                  model_cache=args.model_cache)
    train_args = (paper_args(**common, **given) if args.paper_defaults
                  else TrainArgs(**common, **given))
    report = train(train_args)
    print(json.dumps({k: report[k] for k in ("steps", "examples_seen", "seconds", "device",
                                             "val_loss")}
                     | {"final_loss": report["losses"][-1], "out": args.out}))
    return 0


def read_pairs(path: str | Path):
    """Caption pairs of a CSV (``txt1``, ``txt2``, optional ``word1``/``word2``) as EditPairs."""
    from covr_datagen.mtg_llm.pairs import EditPair, pair_from_captions

    pairs = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"txt1", "txt2"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs columns txt1 and txt2, has {reader.fieldnames}")
        for lineno, row in enumerate(reader, 2):
            if row.get("word1") and row.get("word2"):
                pairs.append(EditPair(row["txt1"], row["txt2"], row["word1"], row["word2"]))
                continue
            try:
                pairs.append(pair_from_captions(row["txt1"], row["txt2"]))
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from None
    return pairs


def read_dense_pairs(path: str | Path):
    """Pairs of a CSV (``txt1``, ``txt2``, optional ``description1``/``description2``; an empty
    description is none) as DensePairs."""
    from covr_datagen.mtg_llm.pairs import DensePair

    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"txt1", "txt2"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs columns txt1 and txt2, has {reader.fieldnames}")
        return [DensePair(row["txt1"], row["txt2"], row.get("description1") or None,
                          row.get("description2") or None) for row in reader]


def _generate(args: argparse.Namespace) -> int:
    from covr_datagen.mtg_llm.engines import make_engine

    cfg = MtgConfig(engine=args.engine, base_model=args.base_model,
                    adapter=adapter_option(args.adapter), endpoint=args.endpoint,
                    model_cache=args.model_cache, top_k=args.top_k, temperature=args.temperature,
                    max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                    seed=args.seed, device=args.device, api_key_env=args.api_key_env,
                    concept_attempts=args.concept_attempts, mode=args.mode,
                    endpoint_api=args.endpoint_api, dense_max_new_tokens=args.dense_max_new_tokens)
    if cfg.concept_attempts < 1:
        raise ValueError(f"--concept-attempts must be at least 1, got {cfg.concept_attempts}")
    engine = make_engine(cfg)
    if cfg.mode == "dense":
        return _generate_dense(args, cfg, engine)
    pairs = read_pairs(args.pairs)
    engine.check_access()
    engine.setup()
    texts: list[str] = []
    missing = 0
    for i in range(0, len(pairs), cfg.batch_size):
        written = engine.write(pairs[i:i + cfg.batch_size], cfg.concept_attempts)
        texts.extend(written.texts)
        missing += written.missing_concept
    if missing:
        print(f"mtg generate: {missing} of {len(pairs)} texts do not name the new concept "
              f"after {cfg.concept_attempts} draw(s)", file=sys.stderr)
    ident = engine.identity()
    _write_csv(args.out, ["txt1", "txt2", "word1", "word2", "edit", "engine", "model", "seed"],
               ([p.txt1, p.txt2, p.word1, p.word2, text, ident["engine"], ident["model"],
                 ident["seed"]] for p, text in zip(pairs, texts)))
    return 0


def _generate_dense(args: argparse.Namespace, cfg: MtgConfig, engine) -> int:
    """``mtg generate --mode dense``: one dense text per row (one draw, seeded per pair)."""
    pairs = read_dense_pairs(args.pairs)
    engine.check_access()
    engine.setup()
    texts: list[str] = []
    for i in range(0, len(pairs), cfg.batch_size):
        texts.extend(engine.generate_dense(pairs[i:i + cfg.batch_size]))
    ident = engine.identity()
    _write_csv(args.out, ["txt1", "txt2", "description1", "description2", "edit_dense", "engine",
                          "model", "seed"],
               ([p.txt1, p.txt2, p.description1 or "", p.description2 or "", text,
                 ident["engine"], ident["model"], ident["seed"]] for p, text in zip(pairs, texts)))
    return 0


def _write_csv(path: str, header: list[str], rows) -> None:
    """``header`` and ``rows`` as CSV to ``path`` (``-``: stdout)."""
    out = sys.stdout if path == "-" else open(path, "w", newline="", encoding="utf-8")
    try:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    finally:
        if out is not sys.stdout:
            out.close()
