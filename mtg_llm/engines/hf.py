"""transformers (+ peft adapter) generation: batched with left padding, top-k sampling, seeded.

Runs on CPU (fp32) and GPU (bf16). Sampling is reproducible for a given batch: before each
``generate`` call the torch RNG is seeded from the engine seed and the batch's prompts.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from mtg_llm.engines.base import Engine, PairLike, as_edit_pair, derive_seed, model_identity
from mtg_llm.models import check_adapter_matches, resolve_adapter, resolve_base_model
from mtg_llm.prompt import format_prompt, parse_completion


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


class HFEngine(Engine):
    """``AutoModelForCausalLM`` with an optional peft LoRA adapter (merged for speed)."""

    name = "hf"

    def __init__(self, base_model: str, adapter: str | None = None, *, top_k: int = 200,
                 temperature: float = 0.8, max_new_tokens: int = 32, seed: int = 0,
                 device: str = "auto", dtype: str = "auto", merge: bool = True,
                 min_new_tokens: int = 0, cache_implementation: str | None = None,
                 stop_at_newline: bool = True, model_cache: str | None = None):
        if not base_model:
            raise ValueError("the hf engine needs mtg.base_model (a model id or local path)")
        check_adapter_matches(base_model, adapter)
        self.base_model, self.adapter = base_model, adapter
        self.model_cache = model_cache
        self.top_k, self.temperature = top_k, temperature
        self.max_new_tokens, self.seed = max_new_tokens, seed
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

    def generate(self, pairs: Sequence[PairLike]) -> list[str]:
        if not pairs:
            return []

        self.setup()
        with self._lock:
            return self._generate_locked(pairs)

    def _generate_locked(self, pairs: Sequence[PairLike]) -> list[str]:
        import torch

        prompts = [format_prompt(p.txt1, p.txt2) for p in map(as_edit_pair, pairs)]
        tok = self.tokenizer
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=True)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        extra = {}
        if self.cache_implementation:
            extra["cache_implementation"] = self.cache_implementation
        if self.stop_at_newline:
            extra.update(stop_strings=["\n"], tokenizer=tok)
        torch.manual_seed(derive_seed(self.seed, *prompts))
        with torch.inference_mode():
            out = self.model.generate(
                **enc, do_sample=True, top_k=self.top_k, temperature=self.temperature,
                max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens or None,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id, **extra,
            )
        new = out[:, enc["input_ids"].shape[1]:]
        if tok.pad_token_id is not None:
            self.last_new_tokens = int((new != tok.pad_token_id).sum())
        else:
            self.last_new_tokens = int(new.numel())
        texts = tok.batch_decode(new, skip_special_tokens=True)
        return [parse_completion(t) for t in texts]

    def identity(self) -> dict:
        return {"engine": self.name, "model": model_identity(self.base_model, self.adapter),
                "seed": self.seed}
