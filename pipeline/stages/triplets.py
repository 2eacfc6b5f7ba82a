"""Stage ``triplets``: kept media pairs -> one modification text per caption pair and direction
-> text filters -> ``triplets``.

Each media pair gives a candidate triplet per direction (forward: media_id1/txt1 -> media_id2/txt2;
backward swaps everything, when ``mtg.both_directions``). Candidates are grouped by
``(pair_id, direction)`` so that the text is generated once and shared by every media pair of that
caption pair (as in the paper); groups are batched into a DoFn that loads the engine once per
worker process (:class:`covr_datagen.pipeline.core.models.SharedModel`). Then the
degenerate-text and negative-sentiment filters. Kept triplets then get per-frame ``scores`` when
the media encoder has a text tower (:mod:`covr_datagen.pipeline.stages.frame_scores`).

Language-model texts that do not name the new concept are sampled again, up to
``mtg.concept_attempts`` draws (:meth:`covr_datagen.mtg_llm.engines.base.Engine.write`); the manifest's
``info`` counts the texts (caption pair and direction) sampled again and those still missing
the concept.

Dense mode (``mtg.mode: dense``): each candidate also gets ``edit_dense``, a complete description
of every change (:meth:`covr_datagen.mtg_llm.engines.base.Engine.generate_dense`), written from
both captions and both media items' descriptions. Descriptions belong to media items, so within
a ``(pair_id, direction)`` group one dense text is written per distinct ``(description1,
description2)``: media pairs without descriptions share one text, like ``edit``. The one-word
``edit`` is written as in edit mode, so one run yields both datasets.

Reproducibility: every engine seeds each pair on its own (``rules``: the template choice; ``hf``:
one random generator per prompt; ``vllm``: per-request seeds), so a pair gets the same text
whatever the batching (see docs/MTG.md).

Dense mode (``mtg.mode: dense``): after those filters, the dense-text filters of
:func:`covr_datagen.pipeline.filter_sets.dense_text_filters` check ``edit_dense`` (config section
``dense_filters``; their settings and the text encoder join the stage's checkpoint key).

Counting unit: candidate triplets (media pair x direction). Drop reasons: ``generation_error``
(the engine could not produce a text for that pair), ``dense_generation_error`` (dense mode: no
dense text, or an empty one, for that pair and those descriptions), ``empty_text``, ``multiline_text``,
``long_text``, ``text_is_caption``, ``negative_sentiment``; in dense mode also
``dense_empty_text``, ``dense_multiline_text``, ``dense_long_text``, ``dense_text_is_caption``,
``dense_too_short``, ``dense_too_long``, ``dense_repetitive``, ``dense_inconsistent``.
"""

from __future__ import annotations

import hashlib
from typing import Iterator

import apache_beam as beam

from covr_datagen.filters.base import Drop
from covr_datagen.filters.degenerate import DegenerateTextFilter
from covr_datagen.filters.sentiment import NegativeSentimentFilter
from covr_datagen.mtg_llm.engines.spec import EngineSpec
from covr_datagen.pipeline.config import Config
from covr_datagen.pipeline.core.accounting import REJECTS_TAG, ApplyFilters, CountInput, Drops, info_counter
from covr_datagen.pipeline.core.models import SharedModel
from covr_datagen.pipeline.core.stage import RunFacts, Stage, StageContext
from covr_datagen.pipeline.core.tables import WriteRejects, WriteTable, file_metadata
from covr_datagen.pipeline.filter_sets import dense_text_filters
from covr_datagen.pipeline.stages.frame_scores import AttachFrameScores, frame_scores_key, scoring_enabled
from covr_datagen.schemas import TRIPLETS

STAGE = "triplets"
GENERATION_ERROR = "generation_error"
DENSE_GENERATION_ERROR = "dense_generation_error"


def triplet_id(pair_id: str, pth1: str, pth2: str, direction: str) -> str:
    """Deterministic id of a triplet (hash of pair id, media ids and direction)."""
    blob = "\x1f".join([pair_id, pth1, pth2, direction]).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


def candidates(row: dict, corpus: str, both_directions: bool) -> Iterator[dict]:
    """The candidate triplet(s) of one media pair, without text; with the media items'
    descriptions when the media pair has any (so that edit-mode rows without descriptions, and
    their rejects, are what they were before descriptions existed)."""
    sides = [("forward", "1", "2")] + ([("backward", "2", "1")] if both_directions else [])
    described = row.get("description1") is not None or row.get("description2") is not None
    for direction, a, b in sides:
        pth1, pth2 = row[f"media_id{a}"], row[f"media_id{b}"]
        extra = ({"description1": row[f"description{a}"], "description2": row[f"description{b}"]}
                 if described else {})
        yield {**extra,
            "pth1": pth1, "pth2": pth2, "txt1": row[f"txt{a}"], "txt2": row[f"txt{b}"],
            "word1": row[f"word{a}"], "word2": row[f"word{b}"],
            "sim_txt": row.get("sim_txt"), "sim_media": row.get("sim_media"), "scores": [],
            "triplet_id": triplet_id(row["pair_id"], pth1, pth2, direction),
            "corpus": corpus, "media_kind": row["media_kind"], "direction": direction,
            "pair_id": row["pair_id"],
        }


def _one_by_one(write, items: list) -> list:
    """``write(items)``, or when it raises ``ValueError`` (one bad item must not sink the batch)
    ``write([item])`` for each item, with the ``ValueError`` in place of a failed item's text."""
    try:
        return write(items)
    except ValueError:
        out: list = []
        for item in items:
            try:
                out.extend(write([item]))
            except ValueError as exc:
                out.append(exc)
        return out


class GenerateTexts(beam.DoFn):
    """Batch of ``((pair_id, direction), [candidates])`` -> candidates with ``edit`` (and in
    dense mode ``edit_dense``) and the engine identity; pairs the engine cannot handle go to the
    rejects output."""

    def __init__(self, engine: EngineSpec, concept_attempts: int, dense: bool = False,
                 batch_size: int = 32):
        self.model = SharedModel(engine)  # one engine (one model in memory) per worker process
        self.concept_attempts = concept_attempts
        self.dense, self.batch_size = dense, batch_size

    def setup(self):
        self._engine = self.model.acquire()
        self._identity = self._engine.identity()
        self._drops = Drops(STAGE)
        self._resampled = info_counter(STAGE, "texts_sampled_again_for_concept")
        self._missing = info_counter(STAGE, "texts_missing_concept")

    def _write(self, pairs) -> list[str]:
        written = self._engine.write(pairs, self.concept_attempts)
        if written.resampled:
            self._resampled.inc(written.resampled)
        if written.missing_concept:
            self._missing.inc(written.missing_concept)
        return written.texts

    def _dense_texts(self, groups: dict[int, list[dict]]) -> dict:
        """``{(group index, description1, description2): dense text or the error}`` for every
        distinct description pair of each group, written ``batch_size`` prompts at a time."""
        from covr_datagen.mtg_llm.pairs import DensePair

        keys, pairs = [], []
        for index, rows in groups.items():
            for d1, d2 in dict.fromkeys((r.get("description1"), r.get("description2")) for r in rows):
                keys.append((index, d1, d2))
                pairs.append(DensePair(rows[0]["txt1"], rows[0]["txt2"], d1, d2))
        texts: list = []
        for start in range(0, len(pairs), self.batch_size):
            texts.extend(_one_by_one(self._engine.generate_dense, pairs[start:start + self.batch_size]))
        if len(texts) != len(pairs):
            raise RuntimeError(f"engine returned {len(texts)} dense texts for {len(pairs)} pairs")
        return dict(zip(keys, texts))

    def process(self, batch):
        from covr_datagen.mtg_llm.pairs import EditPair

        groups = [list(rows) for _, rows in batch]
        pairs = [EditPair(g[0]["txt1"], g[0]["txt2"], g[0]["word1"], g[0]["word2"]) for g in groups]
        texts = _one_by_one(self._write, pairs)
        if len(texts) != len(pairs):
            raise RuntimeError(f"engine returned {len(texts)} texts for {len(pairs)} pairs")
        written = {i: groups[i] for i, text in enumerate(texts) if not isinstance(text, Exception)}
        dense = self._dense_texts(written) if self.dense else {}
        for index, (rows, text) in enumerate(zip(groups, texts)):
            for row in rows:
                if isinstance(text, Exception):
                    yield self._drops.reject(Drop(GENERATION_ERROR, str(text)), row["triplet_id"], row)
                    continue
                out = {**row, "edit": text, "engine": self._identity["engine"],
                       "model": self._identity["model"], "seed": self._identity["seed"]}
                if self.dense:
                    dense_text = dense[(index, row.get("description1"), row.get("description2"))]
                    if isinstance(dense_text, Exception) or not dense_text:
                        why = str(dense_text) if dense_text else "the engine wrote an empty dense text"
                        yield self._drops.reject(Drop(DENSE_GENERATION_ERROR, why),
                                                 row["triplet_id"], out)
                        continue
                    out["edit_dense"] = dense_text
                yield out


def dense_mode(config: Config) -> bool:
    """Whether the stage writes dense texts (``edit_dense``) too."""
    return config.mtg.mode == "dense"


def text_filters(config: Config) -> list:
    """The filters applied to generated texts, cheapest first; in dense mode the dense-text
    filters follow."""
    cfg = config.mtg
    filters = [DegenerateTextFilter(max_chars=cfg.max_chars),
               NegativeSentimentFilter(min_polarity=cfg.min_polarity)]
    if dense_mode(config):
        filters += dense_text_filters(config.dense_filters, config.text_encoder)
    return filters


class TripletStage(Stage):
    """media_pairs -> triplets (see the module docstring)."""

    name = STAGE
    inputs = ("media_pairs",)
    outputs = ("triplets",)
    config_sections = ("mtg",)

    def inputs_for(self, config: Config, facts: RunFacts) -> tuple[str, ...]:
        """``records`` too when frame scores are computed (they resolve the target files)."""
        scores = scoring_enabled(config.media, facts.media_kind)
        return self.inputs + (("records",) if scores else ())

    def key_extra(self, config) -> str:
        """The frame-score settings also shape the output (``scores``); in dense mode, the dense
        filters and the text encoder they embed with."""
        key = frame_scores_key(config.media)
        if dense_mode(config):
            key += "|" + config.section_hash("dense_filters", "text_encoder")
        return key

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        cfg = ctx.config.mtg
        engine = EngineSpec(cfg)
        engine.build().check_access()  # a refused key: one clear line, before any work
        corpus = ctx.facts.corpus_name or ctx.config.corpus.name or ""
        both = cfg.both_directions
        generated = (
            ctx.read(p, "media_pairs")
            | "Candidates" >> beam.FlatMap(lambda r: candidates(r, corpus, both))
            | "CountInput" >> beam.ParDo(CountInput(STAGE, "candidate triplets"))
            | "ByPairDirection" >> beam.Map(lambda r: ((r["pair_id"], r["direction"]), r))
            | "Group" >> beam.GroupByKey()
            # full batches: BatchElements' adaptive sizing keeps a slow model at one or two
            # pairs a batch (it aims at 10 s a batch), and a language model is fastest batched
            | "BatchPairs" >> beam.BatchElements(min_batch_size=cfg.batch_size,
                                                 max_batch_size=cfg.batch_size)
            | "Generate" >> beam.ParDo(GenerateTexts(engine, cfg.concept_attempts,
                                                     dense=dense_mode(ctx.config),
                                                     batch_size=cfg.batch_size))
            .with_outputs(REJECTS_TAG, main="ok")
        )
        kept, filtered_out = generated.ok | "TextFilters" >> ApplyFilters(
            STAGE, text_filters(ctx.config), id_key="triplet_id", what="triplets", count_input=False)
        kept = kept | "FrameScores" >> AttachFrameScores(ctx)
        kept | "WriteTriplets" >> WriteTable(ctx, "triplets",
                                             TRIPLETS.with_metadata(file_metadata(ctx)))
        ((generated[REJECTS_TAG], filtered_out) | "AllRejects" >> beam.Flatten()
         | "WriteRejects" >> WriteRejects(ctx))
