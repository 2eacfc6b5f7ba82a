"""Recording-safe forms of values that may carry credentials.

A URL can hold a secret in its userinfo (``http://user:KEY@host``) or its query string
(``...?api_key=KEY``). Whatever covr-datagen records or prints — ``manifest.json``, the
``model`` column of triplets, exports, the report and dataset card, error messages, the
``config`` command's output — shows URLs through :func:`redact_url`, which replaces both parts
with ``REDACTED``. Keys themselves are read from the environment and never recorded
(``mtg.api_key_env``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "REDACTED"


def redact_url(url: str) -> str:
    """``url`` with its userinfo and its query string and fragment replaced by ``REDACTED``;
    strings that are not URLs with a host are returned unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = MASK if parts.query else ""
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_urls(value: Any) -> Any:
    """``value`` (nested dicts / lists / strings) with every URL-looking string redacted."""
    if isinstance(value, str):
        return redact_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {k: redact_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_urls(v) for v in value]
    return value
