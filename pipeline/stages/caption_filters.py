"""Stage ``caption_filters``: records -> caption-level filters -> ``captions`` table.

Counting unit: records (media items). Kept records are grouped by caption id into distinct
captions (the number is recorded as ``info.distinct_captions``); the caption text kept for a
group is the spelling of its smallest media id, so the result does not depend on worker order.

With ``caption_filters.metadata`` set, each record's ``mature`` flag is taken from that file's
``r18`` (when the corpus itself has none) through a keyed join: a media id matches a metadata id
equal to it, else the single metadata id with the same part after the last ``/`` (WebVid media
ids are ``page_dir/videoid``, CleanVid ids bare video ids); see :mod:`pipeline.corpus.metadata`. How
each record matched is counted as ``info.metadata_full/bare/ambiguous/missing``.

Profanity review (see :mod:`covr_datagen.filters.profanity`): every distinct caption better-profanity flagged
— dropped (reason ``profanity``) or kept because ``caption_filters.profanity_decisions`` says
``keep`` — becomes a row of the ``profanity_review`` table, and after the commit of
``RUN/profanity_review.csv`` (sorted by caption, ``decision`` prefilled from the decisions file,
empty when not reviewed). Records counted in ``info``: ``profanity_kept_after_review``,
``profanity_dropped_after_review`` and ``profanity_not_reviewed`` (the last two make up
``dropped.profanity``).
"""

from __future__ import annotations

import csv
import json
import os

import apache_beam as beam

from covr_datagen.filters.profanity import DROP, KEEP, ProfanityFilter
from covr_datagen.pipeline.core.accounting import ApplyFilters, info_counter
from covr_datagen.pipeline.core.grouping import GroupByKeyInBuckets
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import Stage, StageContext
from covr_datagen.pipeline.core.tables import WriteRejects, WriteTable
from covr_datagen.pipeline.filter_sets import caption_filters
from covr_datagen.schemas import CAPTIONS, PROFANITY_REVIEW

REVIEW_TABLE = "profanity_review"
REVIEW_CSV = "profanity_review.csv"


class MergeCaption(beam.DoFn):
    """``(caption_id, [(media_id, caption, normalized), ...])`` -> one CAPTIONS row (tuples,
    not record dicts, go through the shuffle: no column names to encode per row)."""

    def __init__(self, stage: str):
        self.stage = stage

    def setup(self):
        self._distinct = info_counter(self.stage, "distinct_captions")

    def process(self, element):
        cid, records = element
        records = sorted(records, key=lambda r: r[0])
        _, caption, normalized = records[0]
        self._distinct.inc()
        yield {
            "caption_id": cid,
            "caption": caption,
            "normalized": normalized,
            "num_words": len(normalized.split(" ")),
            "media_ids": [r[0] for r in records],
        }


class AttachMetadataFlag(beam.DoFn):
    """``(bare_id, {"rec": records, "meta": (full_id, r18) pairs})`` -> records with ``mature``."""

    def __init__(self, stage: str):
        self.stage = stage

    def setup(self):
        from covr_datagen.pipeline.corpus.metadata import AMBIGUOUS, BARE, FULL, MISSING

        self._how = {h: info_counter(self.stage, f"metadata_{h}") for h in
                     (FULL, BARE, AMBIGUOUS, MISSING)}
        self._names = (FULL, BARE, AMBIGUOUS, MISSING)

    def process(self, element):
        full, bare, ambiguous, missing = self._names
        _, grouped = element
        meta = dict(grouped["meta"])
        for rec in grouped["rec"]:
            if rec["media_id"] in meta:
                how, flag = full, meta[rec["media_id"]]
            elif len(meta) == 1:
                how, flag = bare, next(iter(meta.values()))
            else:
                how, flag = (ambiguous if meta else missing), None
            self._how[how].inc()
            if rec.get("mature") is None:
                rec = {**rec, "mature": flag}
            yield rec


def join_metadata_flag(p: beam.Pipeline, records, ctx: StageContext, stage: str):
    """Records with ``mature`` filled from ``caption_filters.metadata`` (keyed join, no side input)."""
    import pyarrow.parquet as pq

    from covr_datagen.pipeline.corpus.metadata import bare_id, load_metadata

    table = load_metadata(ctx.config.caption_filters.metadata).select(["media_id", "r18"])
    folder = ctx.staging / "_metadata_input"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "metadata.parquet")
    meta = (p | "ReadMetadata" >> beam.io.ReadFromParquet(str(folder / "*.parquet"))
            | "KeyMetadata" >> beam.Map(lambda m: (bare_id(m["media_id"]), (m["media_id"], m["r18"]))))
    keyed = records | "KeyRecords" >> beam.Map(lambda r: (bare_id(r["media_id"]), r))
    return ({"rec": keyed, "meta": meta} | "JoinMetadata" >> beam.CoGroupByKey()
            | "AttachFlag" >> beam.ParDo(AttachMetadataFlag(stage)))


class KeptAfterReview(beam.DoFn):
    """Kept records whose caption a review decided to keep and that better-profanity flags ->
    ``(caption_id, (media_id, caption))`` (only those ids are checked again)."""

    def __init__(self, profanity: ProfanityFilter):
        self.profanity = profanity

    def setup(self):
        self.profanity.setup()

    def process(self, rec):
        if (self.profanity.decision(rec["caption_id"]) == KEEP
                and self.profanity.is_flagged(rec["caption"])):
            yield rec["caption_id"], (rec["media_id"], rec["caption"])


def _flagged_reject(row: dict):
    """A ``profanity`` reject row -> ``(caption_id, (media_id, caption))``."""
    rec = json.loads(row["record"])
    return rec["caption_id"], (rec["media_id"], rec["caption"])


class ReviewRow(beam.DoFn):
    """``(caption_id, [(media_id, caption), ...])`` of a flagged caption -> a PROFANITY_REVIEW
    row; counts its records by decision."""

    def __init__(self, stage: str, profanity: ProfanityFilter):
        self.stage, self.profanity = stage, profanity

    def setup(self):
        self.profanity.setup()
        self._counts = {KEEP: info_counter(self.stage, "profanity_kept_after_review"),
                        DROP: info_counter(self.stage, "profanity_dropped_after_review"),
                        "": info_counter(self.stage, "profanity_not_reviewed")}

    def process(self, element):
        cid, records = element
        records = sorted(records)
        caption = records[0][1]
        decision = self.profanity.decision(cid)
        self._counts[decision].inc(len(records))
        yield {"caption_id": cid, "caption": caption, "records": len(records),
               "matched": ", ".join(self.profanity.matched_words(caption)), "decision": decision}


def review_rows(kept, rejects, profanity: ProfanityFilter, stage: str):
    """The profanity review rows of one stage run (see the module docstring)."""
    dropped = (rejects
               | "ProfanityRejects" >> beam.Filter(lambda r: r["reason"] == profanity.name)
               | "FlaggedDropped" >> beam.Map(_flagged_reject))
    kept_flagged = kept | "FlaggedKept" >> beam.ParDo(KeptAfterReview(profanity))
    return ((dropped, kept_flagged) | "AllFlagged" >> beam.Flatten()
            | "GroupFlagged" >> beam.GroupByKey()
            | "ReviewRow" >> beam.ParDo(ReviewRow(stage, profanity)))


def write_review_csv(run: RunDir) -> None:
    """``RUN/profanity_review.csv`` from the committed ``profanity_review`` table (sorted by
    caption; only a header when nothing was flagged), written atomically."""
    rows = run.read_table(REVIEW_TABLE).to_pylist() if run.has_table(REVIEW_TABLE) else []
    rows.sort(key=lambda r: (r["caption"].lower(), r["caption_id"]))
    path = run.root / REVIEW_CSV
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=PROFANITY_REVIEW.names)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


class CaptionFilterStage(Stage):
    """Template / profanity / mature / length filters on every record, then distinct captions."""

    name = "caption_filters"
    inputs = ("records",)
    outputs = ("captions", REVIEW_TABLE)
    config_sections = ("caption_filters",)

    def key_extra(self, config) -> str:
        """The metadata file's content and the review decisions are inputs too."""
        from covr_datagen.filters.profanity import read_decisions
        from covr_datagen.pipeline.corpus.layout import corpus_fingerprint

        cfg = config.caption_filters
        parts = [corpus_fingerprint(cfg.metadata) if cfg.metadata else ""]
        if cfg.profanity_decisions:  # the decisions, not the file's bytes: rewriting it the
            # same way (as the review CSV does) changes nothing
            parts.append(json.dumps(sorted(read_decisions(cfg.profanity_decisions).items())))
        return "|".join(p for p in parts if p)

    def after_commit(self, run: RunDir, config) -> None:
        write_review_csv(run)

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        slim = ctx.read(p, "records", columns=(
            "row", "media_id", "caption", "normalized", "caption_id", "mature"))
        if ctx.config.caption_filters.metadata:
            slim = join_metadata_flag(p, slim, ctx, self.name)
        filters = caption_filters(ctx.config.caption_filters)
        kept, rejects = slim | "Filter" >> ApplyFilters(self.name, filters, id_key="media_id",
                                                        what="records")
        profanity = next((f for f in filters if isinstance(f, ProfanityFilter)), None)
        reviews = (review_rows(kept, rejects, profanity, self.name) if profanity
                   else p | "NoReview" >> beam.Create([]))
        reviews | "WriteReview" >> WriteTable(ctx, REVIEW_TABLE, PROFANITY_REVIEW)
        captions = (kept
                    | "KeyByCaption" >> beam.Map(
                        lambda r: (r["caption_id"], (r["media_id"], r["caption"], r["normalized"])))
                    | "GroupByCaption" >> GroupByKeyInBuckets()
                    | "Merge" >> beam.ParDo(MergeCaption(self.name)))
        captions | "WriteCaptions" >> WriteTable(ctx, "captions", CAPTIONS)
        rejects | "WriteRejects" >> WriteRejects(ctx)
