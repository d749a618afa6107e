"""A real OpenAI-compatible chat-completions server on loopback, for tests, with injected faults.

It serves the Qwen teachers' transformers backend (tiny random-weight models) by model name: the
text teacher on user text with ``chat_template_kwargs``, the Omni thinker on base64 ``input_audio``.
It checks the bearer key and that the body's sampling settings are the model's, and answers 400
otherwise. On a seeded fraction of requests it answers 429 (with ``Retry-After``) or 500, drops the
connection without a reply, or replies late, in turn.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import random
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import soundfile as sf

from afcot_core.audio import audio_ref_from_wave
from afcot_core.teacher import Request, Teacher

FAULTS = ("429", "500", "drop", "slow")


class Faults:
    """Which requests misbehave: a seeded ``rate`` of them, by arrival order, taking the kinds in turn.

    ``script`` instead gives the faults of the first requests in order (None: no fault), none after.
    Servers that share one ``Faults`` share its sequence.
    """

    def __init__(self, rate: float = 0.0, seed: int = 0, script: list[str | None] | None = None) -> None:
        self.rate, self.script = rate, list(script or [])
        self._rng = random.Random(seed)
        self._turn = 0
        self._lock = threading.Lock()
        self.count: Counter[str] = Counter()

    def next(self) -> str | None:
        with self._lock:
            if self.script:
                kind = self.script.pop(0)
            elif self._rng.random() < self.rate:
                kind = FAULTS[self._turn % len(FAULTS)]
                self._turn += 1
            else:
                kind = None
            if kind:
                self.count[kind] += 1
            return kind


class ChatServer:
    """``teachers`` maps a served model name to a teacher; ``faults`` says which requests misbehave."""

    def __init__(self, teachers: dict[str, Teacher], key: str, faults: Faults | None = None, slow_s: float = 1.5,
                 retry_after: str = "1") -> None:
        self.teachers, self.key, self.faults = teachers, key, faults or Faults()
        self.slow_s, self.retry_after = slow_s, retry_after
        self._lock = threading.Lock()  # one generate at a time: the tiny models are not thread-safe
        #: bodies answered with 200, in order
        self.answered: list[dict[str, Any]] = []
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        teacher = self.teachers.get(body.get("model", ""))
        if teacher is None:
            return 404, {"error": {"message": f"no model {body.get('model')!r}"}}
        config = teacher.config  # type: ignore[attr-defined]
        wanted = {"temperature": config.temperature, "max_tokens": config.max_new_tokens}
        if config.temperature > 0:
            wanted.update(top_p=config.top_p, top_k=config.top_k)
        if hasattr(config, "enable_thinking"):
            wanted["chat_template_kwargs"] = {"enable_thinking": config.enable_thinking}
        if any(body.get(k) != v for k, v in wanted.items()):
            return 400, {"error": {"message": f"sampling settings differ from the model's: {wanted}"}}
        messages = body["messages"]
        prefix = ""
        if body.get("continue_final_message") and messages[-1]["role"] == "assistant":
            prefix, messages = messages[-1]["content"], messages[:-1]
        content = messages[-1]["content"]
        text, audio = content, None
        if isinstance(content, list):
            text = "".join(c["text"] for c in content if c["type"] == "text")
            for c in content:
                if c["type"] == "input_audio":
                    wave, rate = sf.read(io.BytesIO(base64.b64decode(c["input_audio"]["data"])), dtype="float32")
                    audio = audio_ref_from_wave(wave, rate)
        with self._lock:
            reply = teacher.generate([Request(text, audio, prefix, body.get("seed"))])[0]
            self.answered.append(body)
        return 200, {"id": f"chat-{len(self.answered)}", "object": "chat.completion", "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": reply}}]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                if self.headers.get("Authorization") != f"Bearer {server.key}":
                    # like a careless proxy, it echoes what it was sent: the client must scrub it
                    return self._send(401, {"error": {"message": f"bad key: {self.headers.get('Authorization')}"}})
                fault = server.faults.next()
                if fault == "429":
                    return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": server.retry_after})
                if fault == "500":
                    return self._send(500, {"error": {"message": "engine died"}})
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if fault == "slow":
                    time.sleep(server.slow_s)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    self._send(*server.answer(body))
                return None

        return Handler
