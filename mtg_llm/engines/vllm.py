"""vLLM generation, the production path: in-process ``vllm.LLM`` with the LoRA adapter
(``enable_lora`` + ``LoRARequest``), or any OpenAI-compatible completions endpoint (e.g.
``vllm serve BASE --enable-lora --lora-modules mtg=ADAPTER``) when ``endpoint`` is set.

vLLM is imported only in :meth:`VLLMEngine.setup` of the in-process mode; the argument building
below is plain Python and unit-tested without it. Not exercised on the CPU development machines.

Endpoint authentication: the API key is read from the environment variable named by
``mtg.api_key_env`` (default ``OPENAI_API_KEY``; ``VLLM_API_KEY``, the variable ``vllm serve``
reads its key from, when that one is unset) in the process that sends the requests, and sent as
``Authorization: Bearer <key>``. A 401/403 answer is a clear error naming the variable, checked
once on the launching machine before the stage runs (:meth:`VLLMEngine.check_access`). The
endpoint is recorded and printed only through :func:`covr_datagen.pipeline.redact.redact_url`.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Sequence
from urllib.parse import urlsplit, urlunsplit

from covr_datagen.mtg_llm.engines.base import Engine, PairLike, as_edit_pair, attempt_seed, model_identity
from covr_datagen.mtg_llm.models import resolve_adapter, resolve_base_model
from covr_datagen.mtg_llm.prompt import STOP_SEQUENCES, format_prompt, parse_completion
from covr_datagen.pipeline.redact import MASK, redact_url

LORA_NAME = "mtg"
#: stops sent to the server; the rest of STOP_SEQUENCES is applied when parsing
SERVER_STOPS = ["\n", "###"]
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
#: tried when the configured variable is unset: the variable ``vllm serve`` reads its key from
FALLBACK_API_KEY_ENV = "VLLM_API_KEY"


def completions_url(endpoint: str) -> str:
    """``http://h:8000`` / ``.../v1`` / ``.../v1/completions`` -> the completions URL (a query
    string, e.g. a gateway's ``?api-version=``, is kept)."""
    return _with_path(endpoint, "/completions")


def models_url(endpoint: str) -> str:
    """The ``/v1/models`` URL next to the completions URL (the access check's request)."""
    return _with_path(endpoint, "/models")


def _with_path(endpoint: str, leaf: str) -> str:
    """``endpoint`` with ``leaf`` in place of its ``/completions`` (a URL ending in ``/v1``, or
    a bare server URL, gets ``/v1`` first)."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if path.endswith("/completions"):
        path = path[: -len("/completions")]
    elif not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit(parts._replace(path=path + leaf))


def api_key_from_env(name: str = DEFAULT_API_KEY_ENV) -> str | None:
    """The API key in ``$name``, else in ``$VLLM_API_KEY``; ``None`` when neither is set."""
    return os.environ.get(name) or os.environ.get(FALLBACK_API_KEY_ENV) or None


class EndpointUnusable(RuntimeError):
    """The endpoint refused the request (HTTP 401/403: a missing or wrong API key) or cannot be
    reached."""


class EndpointSetupError(ValueError):
    """The endpoint cannot be used as configured (checked before the stage runs)."""


class VLLMEngine(Engine):
    """vLLM in-process or through an OpenAI-compatible completions endpoint."""

    name = "vllm"

    def __init__(self, base_model: str | None, adapter: str | None = None, *,
                 endpoint: str | None = None, top_k: int = 200, temperature: float = 0.8,
                 max_new_tokens: int = 32, seed: int = 0, max_lora_rank: int = 64,
                 timeout_s: float = 600.0, api_key_env: str = DEFAULT_API_KEY_ENV,
                 model_cache: str | None = None):
        if not endpoint and not base_model:
            raise ValueError("the vllm engine needs mtg.base_model, or mtg.endpoint for a server")
        self.base_model, self.adapter, self.endpoint = base_model, adapter, endpoint
        self.top_k, self.temperature = top_k, temperature
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.max_lora_rank, self.timeout_s = max_lora_rank, timeout_s
        self.api_key_env = api_key_env
        self.model_cache = model_cache
        self._llm = None
        self._lora = None

    # --- argument building (unit-tested) -------------------------------------------------------
    def engine_kwargs(self) -> dict:
        """Keyword arguments of ``vllm.LLM`` (a built-in base model is converted on first use)."""
        kwargs = {"model": resolve_base_model(self.base_model, self.model_cache), "seed": self.seed}
        if self.adapter:
            kwargs.update(enable_lora=True, max_lora_rank=self.max_lora_rank, max_loras=1)
        return kwargs

    def sampling_kwargs(self, attempt: int = 0) -> dict:
        """Keyword arguments of ``vllm.SamplingParams`` (paper: top-k 200, temperature 0.8);
        the seed is per request, so a pair's text does not depend on its batch."""
        return {"n": 1, "top_k": self.top_k, "temperature": self.temperature,
                "max_tokens": self.max_new_tokens, "stop": list(SERVER_STOPS),
                "seed": attempt_seed(self.seed, attempt)}

    def lora_request_args(self) -> tuple[str, int, str] | None:
        """Positional arguments of ``vllm.lora.request.LoRARequest`` (name, int id, path)."""
        return (LORA_NAME, 1, resolve_adapter(self.adapter)) if self.adapter else None

    def endpoint_payload(self, prompts: Sequence[str], attempt: int = 0) -> dict:
        """JSON body of one completions request; ``model`` is the served LoRA module name
        (``mtg.adapter``) when an adapter is set, else the base model."""
        return {"model": self.adapter or self.base_model, "prompt": list(prompts),
                "max_tokens": self.max_new_tokens, "temperature": self.temperature,
                "top_k": self.top_k, "stop": list(SERVER_STOPS),
                "seed": attempt_seed(self.seed, attempt), "n": 1}

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

    def _request(self, url: str, body: dict | None) -> dict:
        """One JSON request to the endpoint with the bearer key; errors never show the key."""
        key = api_key_from_env(self.api_key_env)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, headers=headers)
        where = redact_url(self.endpoint or url)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            if key:
                detail = detail.replace(key, MASK)
            if exc.code in (401, 403):
                given = (f"the key in ${self.api_key_env} (or ${FALLBACK_API_KEY_ENV}) was refused"
                         if key else f"no key was sent: set ${self.api_key_env} (mtg.api_key_env) "
                         f"or ${FALLBACK_API_KEY_ENV}")
                raise EndpointUnusable(f"completions endpoint {where} answered {exc.code} "
                                          f"(not authorised): {given}") from None
            raise RuntimeError(f"completions endpoint {where} answered {exc.code}: "
                               f"{detail}") from None
        except urllib.error.URLError as exc:
            raise EndpointUnusable(f"completions endpoint {where} cannot be reached: "
                               f"{exc.reason}") from None

    def check_access(self) -> None:
        """Ask the endpoint for ``/v1/models`` once: a refused key or an unreachable server is an
        :class:`EndpointSetupError` (one line) before any work is sent. Other HTTP errors are
        left to the real requests (a server need not implement ``/v1/models``)."""
        if not self.endpoint:
            return
        if "@" in urlsplit(self.endpoint).netloc:
            raise EndpointSetupError(
                f"mtg.endpoint {redact_url(self.endpoint)} carries credentials in the URL; put the "
                f"API key in ${self.api_key_env} (mtg.api_key_env) instead")
        try:
            self._request(models_url(self.endpoint), None)
        except EndpointUnusable as exc:
            raise EndpointSetupError(str(exc)) from None
        except RuntimeError:
            pass  # e.g. 404: no /v1/models on this server; the completions requests will tell

    def _post(self, prompts: Sequence[str], attempt: int) -> list[str]:
        data = self._request(completions_url(self.endpoint), self.endpoint_payload(prompts, attempt))
        choices = sorted(data.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != len(prompts):
            raise RuntimeError(f"completions endpoint returned {len(choices)} choices for "
                               f"{len(prompts)} prompts")
        return [c.get("text", "") for c in choices]

    def generate(self, pairs: Sequence[PairLike], attempt: int = 0) -> list[str]:
        if not pairs:
            return []
        prompts = [format_prompt(p.txt1, p.txt2) for p in map(as_edit_pair, pairs)]
        if self.endpoint:
            raw = self._post(prompts, attempt)
        else:  # pragma: no cover - needs a GPU host with vLLM
            from vllm import SamplingParams

            self.setup()
            outs = self._llm.generate(prompts, SamplingParams(**self.sampling_kwargs(attempt)),
                                      lora_request=self._lora)
            raw = [o.outputs[0].text for o in outs]
        return [parse_completion(t, STOP_SEQUENCES) for t in raw]

    def identity(self) -> dict:
        model = model_identity(self.base_model, self.adapter)
        if self.endpoint:
            model += f"@{redact_url(self.endpoint)}"
        return {"engine": self.name, "model": model, "seed": self.seed}
