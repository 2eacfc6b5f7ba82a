"""vLLM generation, the production path: in-process ``vllm.LLM`` with the LoRA adapter
(``enable_lora`` + ``LoRARequest``), or any OpenAI-compatible endpoint (e.g.
``vllm serve BASE --enable-lora --lora-modules mtg=ADAPTER``) when ``endpoint`` is set, called
through ``/v1/completions`` (``endpoint_api: completions``, the prompts of a batch in one request)
or ``/v1/chat/completions`` (``chat``, one conversation per request, :data:`CHAT_CONCURRENCY` at
a time). Every request carries the engine's seed (per attempt), so with vLLM's per-request
seeding a prompt's text does not depend on its batch mates.

Dense texts (``mtg.mode: dense``) come from the base model without the adapter: requests name
``mtg.base_model`` (the served base model), in-process generation uses ``LLM.chat`` without the
LoRA request.

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
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from covr_datagen.mtg_llm.dense_prompt import chat_messages, completion_prompt, parse_dense
from covr_datagen.mtg_llm.engines.base import Engine, PairLike, as_edit_pair, attempt_seed, model_identity
from covr_datagen.mtg_llm.models import resolve_adapter, resolve_base_model
from covr_datagen.mtg_llm.pairs import DensePair
from covr_datagen.mtg_llm.prompt import STOP_SEQUENCES, edit_chat_messages, format_prompt, parse_completion
from covr_datagen.pipeline.redact import MASK, redact_url

LORA_NAME = "mtg"
#: stops sent to the server; the rest of STOP_SEQUENCES is applied when parsing
SERVER_STOPS = ["\n", "###"]
#: stops of dense texts (one paragraph); the rest of dense_prompt.DENSE_STOPS is applied when parsing
DENSE_SERVER_STOPS = ["\n\n", "###"]
#: chat requests in flight at once (chat endpoints take one conversation per request)
CHAT_CONCURRENCY = 8
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
#: tried when the configured variable is unset: the variable ``vllm serve`` reads its key from
FALLBACK_API_KEY_ENV = "VLLM_API_KEY"


def completions_url(endpoint: str) -> str:
    """``http://h:8000`` / ``.../v1`` / ``.../v1/completions`` -> the completions URL (a query
    string, e.g. a gateway's ``?api-version=``, is kept)."""
    return _with_path(endpoint, "/completions")


def chat_url(endpoint: str) -> str:
    """The ``/v1/chat/completions`` URL of the same endpoint."""
    return _with_path(endpoint, "/chat/completions")


def models_url(endpoint: str) -> str:
    """The ``/v1/models`` URL next to the completions URL (the access check's request)."""
    return _with_path(endpoint, "/models")


def _with_path(endpoint: str, leaf: str) -> str:
    """``endpoint`` with ``leaf`` in place of its ``/completions`` or ``/chat/completions`` (a
    URL ending in ``/v1``, or a bare server URL, gets ``/v1`` first)."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if path.endswith("/completions"):
        path = path[: -len("/completions")].removesuffix("/chat")
    elif not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit(parts._replace(path=path + leaf))


def api_key_from_env(name: str = DEFAULT_API_KEY_ENV) -> str | None:
    """The API key in ``$name``, else in ``$VLLM_API_KEY``; ``None`` when neither is set."""
    return os.environ.get(name) or os.environ.get(FALLBACK_API_KEY_ENV) or None


def _chat_text(answer: dict) -> str:
    """The text of a chat completions answer (its one choice's message content)."""
    choices = answer.get("choices", [])
    if len(choices) != 1:
        raise RuntimeError(f"chat endpoint returned {len(choices)} choices for one conversation")
    return (choices[0].get("message") or {}).get("content") or ""


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
                 model_cache: str | None = None, endpoint_api: str = "completions",
                 dense_max_new_tokens: int = 96):
        if not endpoint and not base_model:
            raise ValueError("the vllm engine needs mtg.base_model, or mtg.endpoint for a server")
        self.base_model, self.adapter, self.endpoint = base_model, adapter, endpoint
        self.top_k, self.temperature = top_k, temperature
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.max_lora_rank, self.timeout_s = max_lora_rank, timeout_s
        self.api_key_env = api_key_env
        self.model_cache = model_cache
        self.endpoint_api, self.dense_max_new_tokens = endpoint_api, dense_max_new_tokens
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

    def dense_sampling_kwargs(self) -> dict:
        """``vllm.SamplingParams`` of dense texts: longer, one paragraph, the engine's seed."""
        return {**self.sampling_kwargs(), "max_tokens": self.dense_max_new_tokens,
                "stop": list(DENSE_SERVER_STOPS)}

    def endpoint_body(self, model: str | None, prompt: str | list | None = None,
                      messages: list[dict] | None = None, *, max_tokens: int, stop: list[str],
                      seed: int) -> dict:
        """JSON body of one request: ``prompt`` (completions: a list of prompts) or ``messages``
        (chat: one conversation), with the paper's sampling settings and the seed."""
        body: dict = {"model": model}
        body.update({"prompt": prompt} if messages is None else {"messages": messages})
        body.update(max_tokens=max_tokens, temperature=self.temperature, top_k=self.top_k,
                    stop=list(stop), seed=seed, n=1)
        return body

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

    def _endpoint_texts(self, model: str | None, pairs: Sequence, as_prompt: Callable,
                        as_messages: Callable, max_tokens: int, stop: list[str],
                        seed: int) -> list[str]:
        """Raw texts for ``pairs`` from the endpoint, through the configured API."""
        limits = {"max_tokens": max_tokens, "stop": stop, "seed": seed}
        if self.endpoint_api == "chat":
            url = chat_url(self.endpoint)
            bodies = [self.endpoint_body(model, messages=as_messages(p), **limits) for p in pairs]
            with ThreadPoolExecutor(min(CHAT_CONCURRENCY, len(bodies))) as pool:
                answers = list(pool.map(lambda body: self._request(url, body), bodies))
            return [_chat_text(answer) for answer in answers]
        prompts = [as_prompt(p) for p in pairs]
        data = self._request(completions_url(self.endpoint),
                             self.endpoint_body(model, prompts, **limits))
        choices = sorted(data.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != len(prompts):
            raise RuntimeError(f"completions endpoint returned {len(choices)} choices for "
                               f"{len(prompts)} prompts")
        return [c.get("text", "") for c in choices]

    def generate(self, pairs: Sequence[PairLike], attempt: int = 0) -> list[str]:
        if not pairs:
            return []
        pairs = [as_edit_pair(p) for p in pairs]
        if self.endpoint:
            raw = self._endpoint_texts(
                self.adapter or self.base_model, pairs, lambda p: format_prompt(p.txt1, p.txt2),
                lambda p: edit_chat_messages(p.txt1, p.txt2), self.max_new_tokens, SERVER_STOPS,
                attempt_seed(self.seed, attempt))
        else:  # pragma: no cover - needs a GPU host with vLLM
            from vllm import SamplingParams

            self.setup()
            outs = self._llm.generate([format_prompt(p.txt1, p.txt2) for p in pairs],
                                      SamplingParams(**self.sampling_kwargs(attempt)),
                                      lora_request=self._lora)
            raw = [o.outputs[0].text for o in outs]
        return [parse_completion(t, STOP_SEQUENCES) for t in raw]

    def generate_dense(self, pairs: Sequence[DensePair]) -> list[str]:
        if not pairs:
            return []
        if self.endpoint:
            raw = self._endpoint_texts(self.base_model, pairs, completion_prompt, chat_messages,
                                       self.dense_max_new_tokens, DENSE_SERVER_STOPS, self.seed)
        else:  # pragma: no cover - needs a GPU host with vLLM
            from vllm import SamplingParams

            self.setup()
            outs = self._llm.chat([chat_messages(p) for p in pairs],
                                  SamplingParams(**self.dense_sampling_kwargs()))
            raw = [o.outputs[0].text for o in outs]
        return [parse_dense(t) for t in raw]

    def identity(self) -> dict:
        model = model_identity(self.base_model, self.adapter)
        if self.endpoint:
            model += f"@{redact_url(self.endpoint)}"
        return {"engine": self.name, "model": model, "seed": self.seed}
