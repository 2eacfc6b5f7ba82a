"""Shared test helpers: optional real-data paths, a reproducible config, and run directories and
tables written with the project schemas. Fixtures live in ``conftest.py``; tests import these
with ``from tests.helpers import ...``."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

# Real data next to the repository (optional: tests using it skip when it is absent).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAPER_EXAMPLES = SHARED_DATA / "paper_examples.json"
WEBVID_VAL = SHARED_DATA / "webvid10m_val.csv"

# The dense-text calibration set shipped with the repository (scripts/calibrate_dense.py).
DENSE_CALIBRATION = Path(__file__).resolve().parents[1] / "scripts" / "data" / "dense_calibration.json"

REPRODUCIBLE_YAML = "text_encoder:\n  dtype: float64\nmtg:\n  engine: rules\n"


def reproducible_config():
    """Config whose embeddings are bit-identical across batchings (see TextEncoderConfig.dtype)
    and whose texts come from the rules engine (no model to load)."""
    from covr_datagen.pipeline.config import Config

    config = Config()
    config.text_encoder.dtype = "float64"
    config.mtg.engine = "rules"
    return config


def write_table(folder: Path, rows: list[dict], schema: pa.Schema, name: str = "part-0.parquet") -> Path:
    """Write ``rows`` as one Parquet file of ``schema`` into ``folder``."""
    from covr_datagen.schemas import conform

    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([conform(r, schema) for r in rows], schema=schema)
    path = folder / name
    pq.write_table(table, path)
    return path


def triplet_row(pth1: str, pth2: str, **overrides) -> dict:
    """A complete TRIPLETS row between two media ids (fields derived from the ids by default)."""
    row = {
        "pth1": pth1, "pth2": pth2, "edit": f"Turn {pth1} into {pth2}",
        "txt1": f"caption of {pth1}", "txt2": f"caption of {pth2}", "sim_txt": 0.8, "scores": [],
        "triplet_id": f"{pth1}>{pth2}", "corpus": "test", "media_kind": "video", "sim_media": 0.5,
        "word1": "a", "word2": "b", "direction": "forward", "pair_id": f"{pth1}-{pth2}",
        "engine": "rules", "model": "rules", "seed": 0,
    }
    row.update(overrides)
    return row


def write_run(root: Path, tables: dict[str, tuple[list[dict], pa.Schema]],
              stages: list[dict] | None = None, config: dict | None = None):
    """A run directory holding hand-written tables and a hand-written manifest."""
    from covr_datagen.pipeline.core.rundir import RunDir

    run = RunDir(root)
    for name, (rows, schema) in tables.items():
        write_table(run.table(name), rows, schema)
    run.write_manifest({"stages": stages or [], "config": config or {}, "config_hash": "test",
                        "versions": {}})
    return run


# --- a stand-in OpenAI-compatible server -------------------------------------------------------
@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 in a thread; yields the base URL."""
    srv = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


class StandInOpenAI:
    """A stand-in for an OpenAI-compatible server (``vllm serve``) over real HTTP on 127.0.0.1:
    ``GET /v1/models``, ``POST /v1/completions`` (one choice per prompt, listed in reverse order
    so clients must sort by index) and ``POST /v1/chat/completions`` (one choice). The scripted
    ``answer(text)`` gets a completion prompt, or a chat request's last message, and returns the
    raw answer. Every request is recorded in :attr:`requests` as ``(path, Authorization header,
    body)``; with ``key`` set, a request without ``Bearer <key>`` is answered 401.

    Use as a context manager: ``with StandInOpenAI(answer) as server: server.url``."""

    def __init__(self, answer: Callable[[str], str], key: str | None = None):
        self.answer, self.key = answer, key
        self.requests: list[tuple[str, str | None, dict | None]] = []
        self.url = ""
        self._serving = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, data: dict) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(data).encode())

            def _admitted(self, body: dict | None) -> bool:
                auth = self.headers.get("Authorization")
                server.requests.append((self.path, auth, body))
                if server.key and auth != f"Bearer {server.key}":
                    self._reply(401, {"error": "invalid api key"})
                    return False
                return True

            def do_GET(self):  # noqa: N802 - http.server API
                if self._admitted(None):
                    self._reply(200, {"data": [{"id": "stand-in"}]})

            def do_POST(self):  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not self._admitted(body):
                    return
                if self.path.endswith("/chat/completions"):
                    text = server.answer(body["messages"][-1]["content"])
                    self._reply(200, {"choices": [{"index": 0, "message": {
                        "role": "assistant", "content": text}}]})
                else:
                    choices = [{"index": i, "text": server.answer(p)} for i, p in enumerate(body["prompt"])]
                    self._reply(200, {"choices": choices[::-1]})

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self) -> "StandInOpenAI":
        self._serving = serving(self._handler())
        self.url = self._serving.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._serving.__exit__(*exc)
