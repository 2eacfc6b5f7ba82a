"""Seeded synthetic WebVid-style corpora for benchmarks and tests (any size).

The generator writes ``videoid,contentUrl,duration,page_dir,name`` rows whose captions imitate
what the miner sees in WebVid2M (CoVR-2, Sec. 3.1): ~2M distinct captions of which ~177k
(~9%) are in some one-word pair, ~1.2M one-word caption pairs (~0.6 per caption), ~60% of those
pairs between template captions ("... background", "abstract ...", "... concept", "flag of ..."),
a few captions shared by several videos, and a long tail of captions in no pair at all.

Seeds: the captions of a real WebVid CSV (``seed_csv``; by default the 5,000-row WebVid-10M val
sample when it exists) give the caption-length distribution and the vocabulary with its word
frequencies. Without that file a small built-in caption list is used, so nothing here needs data.

Every distinct caption is one of three kinds (knobs in :class:`SynthConfig`):

* **long tail** (``1 - family_frac - template_frac``): a seed caption's words, each re-drawn from
  the seed vocabulary (by frequency) with probability ``substitute``, and ``rare_words`` positions
  (at most length - 1 from 3 words on) given a rare pseudo-word (names, places, jargon:
  WebVid's vocabulary keeps growing with its size). The rare words keep accidental one-word
  pairs between long-tail captions linear in the corpus size instead of quadratic.
* **one-word families** (``family_frac``): a long-tail base caption plus variants that replace one
  word with another seed-vocabulary word ("young woman smiling" ~ "old woman smiling"); a family
  varies one position (all members pair with each other) with probability ``family_clique``, else
  each variant picks its own position (variants pair with the base). Family sizes follow a
  truncated power law (``family_alpha``, ``family_max``).
* **template groups** (``template_frac``): a template with one varying slot and fixed words
  ("{fixed} {x} background"); all members of a group pair with each other. Group sizes follow
  a truncated power law (``template_alpha``, ``template_max``).

Captions are then given to videos: a share ``shared_frac`` of captions is used by 2 to
``max_videos_per_caption`` videos. Everything depends only on ``seed`` and the seed captions.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from covr_datagen.pipeline.text.normalize import tokenize

DEFAULT_SEED_CSV = "/work/shared/data/webvid10m_val.csv"
HEADER = ("videoid", "contentUrl", "duration", "page_dir", "name")

#: used when no seed CSV is available: short stock-footage captions in WebVid's style
BUILTIN_SEEDS = (
    "Aerial view of a green forest in summer",
    "Young woman smiling and looking at the camera",
    "Slow motion of waves crashing on the rocky beach at sunset",
    "Businessman talking on the phone in a modern office",
    "Close up of a cat sleeping on the sofa",
    "Timelapse of clouds moving over the mountains",
    "Happy family walking in the park on a sunny day",
    "Traffic on a busy city street at night",
    "Chef cooking vegetables in a hot pan in the kitchen",
    "Drone shot over a small village in the snow",
    "Children playing football on the green field",
    "Hands typing on a laptop keyboard",
    "Red rose flower blooming",
    "Old man reading a newspaper on a bench",
    "Fishing boat sailing on the calm sea in the morning",
    "Girl riding a bicycle along the river",
    "Snow falling on pine trees in the winter forest",
    "Doctor examining a patient in the hospital",
    "Colorful fireworks exploding in the night sky",
    "Horse running across the meadow",
    "Couple dancing at a wedding party",
    "Rain drops falling on the window glass",
    "Tourists walking in the old town square",
    "Bee collecting pollen from a yellow flower",
    "Students studying in the library",
    "Waterfall in the tropical jungle",
    "Man jogging on the road at sunrise",
    "Vintage car driving on the desert highway",
    "Mother holding her baby at home",
    "Candle burning in the dark",
    "Sunset",
    "Cherry blossom",
    "City skyline",
    "Ocean waves",
)

TEMPLATES = (
    "{fixed} {x} background",
    "abstract {x} {fixed} background",
    "{x} {fixed} concept",
    "flag of {x} waving {fixed}",
    "abstract {fixed} {x}",
    "{x} on {fixed} background",
    "business concept of {x} {fixed}",
)

_SYLLABLES = ("ka", "lo", "mi", "ren", "tu", "sa", "vo", "ni", "ber", "go", "la", "zen", "di",
              "mar", "po", "ti", "ex", "or", "an", "ul", "fi", "qua", "shi", "bra", "ke", "ru",
              "mo", "sel", "da", "vin", "ho", "ta", "nor", "pe", "lu", "gra", "ste", "ja", "wen",
              "cor")  # 40 syllables, 2-5 per word: ~10^8 pseudo-words


@dataclass
class SynthConfig:
    """Knobs of the generator (defaults target WebVid2M's mining statistics, see module doc)."""

    captions: int = 100_000  # distinct captions to generate (before accidental duplicates)
    seed: int = 0
    seed_csv: str | None = DEFAULT_SEED_CSV  # None or missing file: built-in seeds
    family_frac: float = 0.05  # share of captions in non-template one-word families
    family_clique: float = 0.6  # P(a family varies a single position)
    family_alpha: float = 1.8  # family size ~ s**-alpha on [2, family_max]
    family_max: int = 40
    template_frac: float = 0.033  # share of captions from templates
    template_alpha: float = 2.0  # template group size ~ s**-alpha on [2, template_max]
    template_max: int = 90
    substitute: float = 0.5  # long tail: probability that a seed word is re-drawn
    rare_words: int = 2  # rare pseudo-words per long-tail caption (0 = none)
    rare_vocab_per_caption: float = 0.5  # rare pseudo-word pool size / captions
    shared_frac: float = 0.05  # share of captions used by several videos
    max_videos_per_caption: int = 5
    period_frac: float = 0.3  # share of captions ending with "."


def load_seed_captions(path: str | None) -> list[str]:
    """Captions of the seed CSV's ``name`` column, or the built-in list without a file."""
    if path is None or not Path(path).exists():
        return list(BUILTIN_SEEDS)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "name" not in reader.fieldnames:
            raise ValueError(f"seed CSV {path} has no 'name' column (columns: {reader.fieldnames})")
        captions = [row["name"] for row in reader if row["name"].strip()]
    if not captions:
        raise ValueError(f"seed CSV {path} holds no captions")
    return captions


class _Sampler:
    """Seed-derived distributions (skeletons, vocabulary by frequency, rare words), drawn in
    large numpy batches so that millions of captions take seconds."""

    _CHUNK = 1 << 18

    def __init__(self, seeds: Sequence[str], rng: np.random.Generator, n_rare: int,
                 substitute: float):
        self.skeletons = [t for t in (tokenize(c) for c in seeds) if t]
        counts = Counter(w for t in self.skeletons for w in t if re.fullmatch(r"[a-z][a-z'-]*", w))
        if len(counts) < 10:
            raise ValueError("seed captions give fewer than 10 distinct words")
        self.words = np.array(sorted(counts))
        freq = np.array([counts[w] for w in self.words], dtype=np.float64)
        self.word_p = freq / freq.sum()
        self.rng = rng
        self.substitute = substitute
        self.rare = self._rare_words(max(n_rare, 1000))
        self._vocab: list[str] = []
        self._unif: list[float] = []
        self._rare_idx: list[int] = []

    def _rare_words(self, n: int) -> list[str]:
        syl = np.array(_SYLLABLES)
        known = set(self.words.tolist())
        out: list[str] = []
        seen: set[str] = set()
        while len(out) < n:
            before = len(out)
            k = self.rng.integers(2, 6, size=n)
            parts = self.rng.integers(0, len(syl), size=(n, 5))
            for kk, pp in zip(k.tolist(), parts):
                word = "".join(syl[pp[:kk]])
                if word not in seen and word not in known:
                    seen.add(word)
                    out.append(word)
                    if len(out) == n:
                        break
            if len(out) - before < n // 100:
                raise ValueError(f"cannot make {n:,} distinct rare words; lower "
                                 "rare_vocab_per_caption")
        return out

    def word(self) -> str:
        """One seed-vocabulary word, by frequency."""
        if not self._vocab:
            idx = self.rng.choice(len(self.words), size=self._CHUNK, p=self.word_p)
            self._vocab = self.words[idx].tolist()
        return self._vocab.pop()

    def uniform(self) -> float:
        if not self._unif:
            self._unif = self.rng.random(self._CHUNK).tolist()
        return self._unif.pop()

    def rare_word(self) -> str:
        if not self._rare_idx:
            self._rare_idx = self.rng.integers(0, len(self.rare), size=self._CHUNK).tolist()
        return self.rare[self._rare_idx.pop()]

    def skeleton(self, min_len: int = 1) -> list[str]:
        """A seed caption's words (the length distribution of the seeds)."""
        while True:
            words = self.skeletons[int(self.uniform() * len(self.skeletons))]
            if len(words) >= min_len:
                return list(words)

    def long_tail(self, rare: int, min_len: int = 1) -> list[str]:
        """A seed skeleton with words re-drawn (prob ``substitute``) and ``rare`` rare words."""
        words = self.skeleton(min_len)
        n = len(words)
        for i in range(n):
            if self.uniform() < self.substitute:
                words[i] = self.word()
        # a 2-word caption with one common word would pair with every 2-word caption sharing
        # that word (quadratic in corpus size), so short captions get rare words throughout
        rare = min(rare, n) if n <= 2 else min(rare, n - 1)
        if rare:
            start = int(self.uniform() * n)
            step = 1 + int(self.uniform() * (n - 1))
            for j in range(rare):
                words[(start + j * step) % n] = self.rare_word()
        return words

    def other_words(self, current: str, n: int) -> list[str]:
        """``n`` distinct vocabulary words, none equal to ``current``."""
        out: list[str] = []
        seen = {current}
        while len(out) < n:
            w = self.word()
            if w not in seen:
                seen.add(w)
                out.append(w)
        return out


def power_law_sizes(rng: np.random.Generator, total: int, alpha: float, max_size: int
                    ) -> list[int]:
    """Group sizes ``s ~ s**-alpha`` on ``[2, max_size]`` summing to ``total`` (last one cut)."""
    if total < 2:
        return [total] if total else []
    support = np.arange(2, max(max_size, 2) + 1)
    p = support.astype(np.float64) ** -alpha
    p /= p.sum()
    sizes: list[int] = []
    left = total
    while left >= 2:
        for s in rng.choice(support, size=max(16, int(left / 4)), p=p).tolist():
            s = min(int(s), left)
            if left - s == 1:
                s += 1
            sizes.append(s)
            left -= s
            if left < 2:
                break
    if left == 1:
        sizes[-1] += 1
    return sizes


def _render(words: Sequence[str], period: bool) -> str:
    text = " ".join(words)
    text = text[:1].upper() + text[1:]
    return text + "." if period else text


def generate_captions(cfg: SynthConfig) -> list[str]:
    """The distinct captions (as text; a few may coincide by chance), in generation order."""
    if cfg.captions < 1:
        raise ValueError("captions must be >= 1")
    for name in ("family_frac", "template_frac", "shared_frac", "family_clique", "period_frac"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]")
    if cfg.family_frac + cfg.template_frac > 1.0:
        raise ValueError("family_frac + template_frac must be <= 1")
    rng = np.random.default_rng(cfg.seed)
    sampler = _Sampler(load_seed_captions(cfg.seed_csv), rng,
                       int(cfg.captions * cfg.rare_vocab_per_caption), cfg.substitute)
    n_family = int(round(cfg.captions * cfg.family_frac))
    n_template = int(round(cfg.captions * cfg.template_frac))
    n_tail = cfg.captions - n_family - n_template
    out: list[list[str]] = [sampler.long_tail(cfg.rare_words) for _ in range(n_tail)]

    for size in power_law_sizes(rng, n_family, cfg.family_alpha, cfg.family_max):
        base = sampler.long_tail(cfg.rare_words, min_len=2)
        out.append(base)
        if sampler.uniform() < cfg.family_clique:
            pos = int(sampler.uniform() * len(base))
            for w in sampler.other_words(base[pos], size - 1):
                out.append(base[:pos] + [w] + base[pos + 1:])
        else:
            for _ in range(size - 1):
                pos = int(sampler.uniform() * len(base))
                w = sampler.other_words(base[pos], 1)[0]
                out.append(base[:pos] + [w] + base[pos + 1:])

    for size in power_law_sizes(rng, n_template, cfg.template_alpha, cfg.template_max):
        template = TEMPLATES[int(sampler.uniform() * len(TEMPLATES))]
        fixed = sampler.rare_word() if sampler.uniform() < 0.5 else sampler.word()
        for x in sampler.other_words("", size):
            out.append(template.format(x=x, fixed=fixed).split(" "))

    order = rng.permutation(len(out))
    periods = rng.random(len(out)) < cfg.period_frac
    return [_render(out[i], bool(p)) for i, p in zip(order.tolist(), periods.tolist())]


def generate_rows(cfg: SynthConfig) -> Iterator[tuple]:
    """CSV rows ``(videoid, contentUrl, duration, page_dir, name)``; ids are unique."""
    captions = generate_captions(cfg)
    rng = np.random.default_rng([cfg.seed, 1])
    extra = np.zeros(len(captions), dtype=np.int64)
    shared = rng.random(len(captions)) < cfg.shared_frac
    extra[shared] = rng.integers(1, max(cfg.max_videos_per_caption, 2), size=int(shared.sum()))
    total = len(captions) + int(extra.sum())
    ids = 1_000_000_000 + rng.choice(50 * total, size=total, replace=False)
    durations = rng.integers(5, 60, size=total)
    k = 0
    for caption, n_extra in zip(captions, extra.tolist()):
        for _ in range(1 + n_extra):
            vid = int(ids[k])
            dur = int(durations[k])
            k += 1
            slug = re.sub(r"[^a-z0-9]+", "-", caption.lower()).strip("-")[:80]
            page = (vid // 50) % 1_000_000 * 50
            yield (vid, f"https://example.invalid/videos/{vid}/preview/stock-footage-{slug}.mp4",
                   f"PT00H00M{dur:02d}S", f"{page + 1:06d}_{page + 50:06d}", caption)


def write_corpus(path: str | Path, cfg: SynthConfig) -> int:
    """Write the corpus CSV to ``path``; returns the number of rows (videos)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for row in generate_rows(cfg):
            writer.writerow(row)
            n += 1
    return n
