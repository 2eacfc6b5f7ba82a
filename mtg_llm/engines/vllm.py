"""vLLM generation, the production path: in-process ``vllm.LLM`` with the LoRA adapter
(``enable_lora`` + ``LoRARequest``), or any OpenAI-compatible completions endpoint (e.g.
``vllm serve BASE --enable-lora --lora-modules mtg=ADAPTER``) when ``endpoint`` is set.

vLLM is imported only in :meth:`VLLMEngine.setup` of the in-process mode; the argument building
below is plain Python and unit-tested without it. Not exercised on the CPU development machines.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Sequence

from mtg_llm.engines.base import Engine, PairLike, as_edit_pair, path_fingerprint
from mtg_llm.prompt import STOP_SEQUENCES, format_prompt, parse_completion

LORA_NAME = "mtg"
#: stops sent to the server; the rest of STOP_SEQUENCES is applied when parsing
SERVER_STOPS = ["\n", "###"]


def completions_url(endpoint: str) -> str:
    """``http://h:8000`` / ``.../v1`` / ``.../v1/completions`` -> the completions URL."""
    url = endpoint.rstrip("/")
    if url.endswith("/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/completions"
    return url + "/v1/completions"


class VLLMEngine(Engine):
    """vLLM in-process or through an OpenAI-compatible completions endpoint."""

    name = "vllm"

    def __init__(self, base_model: str | None, adapter: str | None = None, *,
                 endpoint: str | None = None, top_k: int = 200, temperature: float = 0.8,
                 max_new_tokens: int = 32, seed: int = 0, max_lora_rank: int = 64,
                 timeout_s: float = 600.0):
        if not endpoint and not base_model:
            raise ValueError("the vllm engine needs mtg.base_model, or mtg.endpoint for a server")
        self.base_model, self.adapter, self.endpoint = base_model, adapter, endpoint
        self.top_k, self.temperature = top_k, temperature
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.max_lora_rank, self.timeout_s = max_lora_rank, timeout_s
        self._llm = None
        self._lora = None

    # --- argument building (unit-tested) -------------------------------------------------------
    def engine_kwargs(self) -> dict:
        """Keyword arguments of ``vllm.LLM``."""
        kwargs = {"model": self.base_model, "seed": self.seed}
        if self.adapter:
            kwargs.update(enable_lora=True, max_lora_rank=self.max_lora_rank, max_loras=1)
        return kwargs

    def sampling_kwargs(self) -> dict:
        """Keyword arguments of ``vllm.SamplingParams`` (paper: top-k 200, temperature 0.8)."""
        return {"n": 1, "top_k": self.top_k, "temperature": self.temperature,
                "max_tokens": self.max_new_tokens, "stop": list(SERVER_STOPS), "seed": self.seed}

    def lora_request_args(self) -> tuple[str, int, str] | None:
        """Positional arguments of ``vllm.lora.request.LoRARequest`` (name, int id, path)."""
        return (LORA_NAME, 1, self.adapter) if self.adapter else None

    def endpoint_payload(self, prompts: Sequence[str]) -> dict:
        """JSON body of one completions request; ``model`` is the served LoRA module name
        (``mtg.adapter``) when an adapter is set, else the base model."""
        return {"model": self.adapter or self.base_model, "prompt": list(prompts),
                "max_tokens": self.max_new_tokens, "temperature": self.temperature,
                "top_k": self.top_k, "stop": list(SERVER_STOPS), "seed": self.seed, "n": 1}

    # --- running ---------------------------------------------------------------------------------
    def setup(self) -> None:
        if self.endpoint or self._llm is not None:
            return
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ImportError as exc:  # pragma: no cover - needs a GPU host with vLLM
            raise RuntimeError("the vllm engine needs the 'vllm' package (GPU host); use "
                               "mtg.endpoint for a running server or engine 'hf'") from exc
        self._llm = LLM(**self.engine_kwargs())  # pragma: no cover
        args = self.lora_request_args()  # pragma: no cover
        self._lora = LoRARequest(*args) if args else None  # pragma: no cover

    def _post(self, prompts: Sequence[str]) -> list[str]:
        body = json.dumps(self.endpoint_payload(prompts)).encode("utf-8")
        req = urllib.request.Request(completions_url(self.endpoint), data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                data = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            raise RuntimeError(f"completions endpoint {self.endpoint} answered {exc.code}: "
                               f"{detail}") from exc
        choices = sorted(data.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != len(prompts):
            raise RuntimeError(f"completions endpoint returned {len(choices)} choices for "
                               f"{len(prompts)} prompts")
        return [c.get("text", "") for c in choices]

    def generate(self, pairs: Sequence[PairLike]) -> list[str]:
        if not pairs:
            return []
        prompts = [format_prompt(p.txt1, p.txt2) for p in map(as_edit_pair, pairs)]
        if self.endpoint:
            raw = self._post(prompts)
        else:  # pragma: no cover - needs a GPU host with vLLM
            from vllm import SamplingParams

            self.setup()
            outs = self._llm.generate(prompts, SamplingParams(**self.sampling_kwargs()),
                                      lora_request=self._lora)
            raw = [o.outputs[0].text for o in outs]
        return [parse_completion(t, STOP_SEQUENCES) for t in raw]

    def identity(self) -> dict:
        model = self.base_model or ""
        if self.adapter:
            fp = path_fingerprint(self.adapter)
            model += f"+{self.adapter}" + (f"@{fp}" if fp else "")
        if self.endpoint:
            model += f"@{self.endpoint}"
        return {"engine": self.name, "model": model, "seed": self.seed}
