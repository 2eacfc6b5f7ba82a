"""transformers (+ peft adapter) generation: batched with left padding, top-k sampling, seeded.

Runs on CPU (fp32) and GPU (bf16). Each prompt samples from its own random generator, seeded from
the engine seed and that prompt (:class:`PerPromptSampler`), so a pair gets the same text in any
batch, as with vLLM's per-request seeds (up to floating-point differences between batch shapes,
which could move a draw that falls on a token boundary).

Dense texts (:meth:`HFEngine.generate_dense`) are written by the base model alone: the LoRA
adapter was trained on one-word edits, so in dense mode it is kept unmerged and switched off
for dense prompts (``disable_adapter``). The prompt goes through the tokenizer's chat template
when it has one (SmolLM2-135M-Instruct does), else in its plain-completion rendering
(:mod:`covr_datagen.mtg_llm.dense_prompt`).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Sequence

from covr_datagen.mtg_llm.dense_prompt import chat_messages, completion_prompt, parse_dense
from covr_datagen.mtg_llm.engines.base import (
    Engine,
    PairLike,
    as_edit_pair,
    attempt_seed,
    derive_seed,
    model_identity,
)
from covr_datagen.mtg_llm.models import check_adapter_matches, resolve_adapter, resolve_base_model
from covr_datagen.mtg_llm.pairs import DensePair
from covr_datagen.mtg_llm.prompt import format_prompt, parse_completion


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(base_model: str, adapter: str | None = None):
    """The tokenizer saved with the adapter when there is one, else the base model's;
    left padding, pad token = eos when the tokenizer has none."""
    from transformers import AutoTokenizer

    source = base_model
    if adapter and (Path(adapter) / "tokenizer_config.json").is_file():
        source = adapter
    tok = AutoTokenizer.from_pretrained(source)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


class PerPromptSampler:
    """A transformers logits processor that samples each row with its own ``torch.Generator``
    (temperature, then top-k) and leaves only the drawn token, so that greedy decoding emits it.

    The global torch RNG draws one sequence for a whole batch, which ties a text to its batch
    mates; one generator per row does not.
    """

    def __init__(self, seeds: Sequence[int], top_k: int, temperature: float):
        self.seeds, self.top_k, self.temperature = list(seeds), top_k, temperature
        self.generators: list | None = None

    def __call__(self, input_ids, scores):
        import torch

        if self.generators is None:
            self.generators = [torch.Generator(device=scores.device).manual_seed(s)
                               for s in self.seeds]
        logits = scores.float() / max(self.temperature, 1e-6)
        if 0 < self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        drawn = torch.cat([torch.multinomial(probs[i], 1, generator=g)
                           for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(scores.shape[0], device=scores.device), drawn] = 0.0
        return out


class HFEngine(Engine):
    """``AutoModelForCausalLM`` with an optional peft LoRA adapter (merged for speed)."""

    name = "hf"

    def __init__(self, base_model: str, adapter: str | None = None, *, top_k: int = 200,
                 temperature: float = 0.8, max_new_tokens: int = 32, seed: int = 0,
                 device: str = "auto", dtype: str = "auto", merge: bool = True,
                 min_new_tokens: int = 0, cache_implementation: str | None = None,
                 stop_at_newline: bool = True, model_cache: str | None = None,
                 dense_max_new_tokens: int = 96):
        if not base_model:
            raise ValueError("the hf engine needs mtg.base_model (a model id or local path)")
        check_adapter_matches(base_model, adapter)
        self.base_model, self.adapter = base_model, adapter
        self.model_cache = model_cache
        self.top_k, self.temperature = top_k, temperature
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.dense_max_new_tokens = dense_max_new_tokens
        self.device, self.dtype, self.merge = device, dtype, merge
        self.min_new_tokens = min_new_tokens  # > 0 only for fixed-length benchmarks
        self.cache_implementation = cache_implementation  # e.g. "static" (see BENCHMARKS.md)
        # a sequence is finished at its first line break (the text is one line); benchmarks
        # turn this off to keep the number of new tokens fixed
        self.stop_at_newline = stop_at_newline
        self.model = None
        self.tokenizer = None
        self.last_new_tokens = 0  # new tokens produced by the last generate() (benchmarks)
        self._lock = threading.Lock()  # one generate at a time: shared model, global torch RNG

    def setup(self) -> None:
        if self.model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM

        device = resolve_device(self.device)
        dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32,
                 "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.dtype]
        base = resolve_base_model(self.base_model, self.model_cache)
        adapter = resolve_adapter(self.adapter)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
            if self.merge:
                model = model.merge_and_unload()
        self.use_model(model.to(device), load_tokenizer(base, adapter))

    def use_model(self, model, tokenizer) -> None:
        """Use an already built model and tokenizer (benchmarks build one directly on the GPU)."""
        model.eval()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.model, self.tokenizer = model, tokenizer

    def generate(self, pairs: Sequence[PairLike], attempt: int = 0) -> list[str]:
        if not pairs:
            return []
        prompts = [format_prompt(p.txt1, p.txt2) for p in map(as_edit_pair, pairs)]
        raw = self._sample(prompts, attempt_seed(self.seed, attempt), self.max_new_tokens, "\n",
                           add_special_tokens=True)
        return [parse_completion(t) for t in raw]

    def dense_prompts(self, pairs: Sequence[DensePair]) -> tuple[list[str], bool]:
        """The dense prompts as the model sees them, and whether they came from the chat
        template (which holds its own special tokens)."""
        self.setup()
        if getattr(self.tokenizer, "chat_template", None):
            return [self.tokenizer.apply_chat_template(chat_messages(p), tokenize=False,
                                                       add_generation_prompt=True)
                    for p in pairs], True
        return [completion_prompt(p) for p in pairs], False

    def generate_dense(self, pairs: Sequence[DensePair]) -> list[str]:
        if not pairs:
            return []
        prompts, chat = self.dense_prompts(pairs)
        raw = self._sample(prompts, self.seed, self.dense_max_new_tokens, "\n\n",
                           add_special_tokens=not chat, adapter=False)
        return [parse_dense(t) for t in raw]

    def _sample(self, prompts: list[str], seed: int, max_new_tokens: int, stop: str, *,
                add_special_tokens: bool, adapter: bool = True) -> list[str]:
        """Raw completions of ``prompts``, each sampled with its own generator seeded from
        ``seed`` and the prompt; ``adapter=False`` switches an unmerged LoRA adapter off."""
        self.setup()
        disable = getattr(self.model, "disable_adapter", None)
        off = disable() if not adapter and disable is not None else contextlib.nullcontext()
        with self._lock, off:
            return self._generate_locked(prompts, seed, max_new_tokens, stop, add_special_tokens)

    def _generate_locked(self, prompts: list[str], seed: int, max_new_tokens: int, stop: str,
                         add_special_tokens: bool) -> list[str]:
        import torch
        from transformers import LogitsProcessorList

        tok = self.tokenizer
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        extra = {}
        if self.cache_implementation:
            extra["cache_implementation"] = self.cache_implementation
        if self.stop_at_newline:
            extra.update(stop_strings=[stop], tokenizer=tok)
        sampler = PerPromptSampler([derive_seed(seed, p) for p in prompts], self.top_k,
                                   self.temperature)
        with torch.inference_mode():
            out = self.model.generate(
                **enc, do_sample=False, logits_processor=LogitsProcessorList([sampler]),
                max_new_tokens=max_new_tokens, min_new_tokens=self.min_new_tokens or None,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id, **extra,
            )
        new = out[:, enc["input_ids"].shape[1]:]
        if tok.pad_token_id is not None:
            self.last_new_tokens = int((new != tok.pad_token_id).sum())
        else:
            self.last_new_tokens = int(new.numel())
        return tok.batch_decode(new, skip_special_tokens=True)

    def identity(self) -> dict:
        return {"engine": self.name, "model": model_identity(self.base_model, self.adapter),
                "seed": self.seed}
