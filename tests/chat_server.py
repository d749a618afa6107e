"""A real OpenAI-compatible chat-completions server on loopback, for tests, with injected faults and latencies.

It serves teachers by model name: the Qwen teachers' transformers backend on tiny random weights, or
the embedded teachers (fast, and their replies make accepted records). The text teacher gets user text
with ``chat_template_kwargs``, the Omni thinker base64 ``input_audio``. A transformers Qwen3 is served
the way vLLM serves it: the messages through the tokenizer's chat template (``continue_final_message``
included), the reply decoded with the body's ``skip_special_tokens`` (default true), without the stop
token. It checks the bearer key and that the body's sampling settings are the model's (400 otherwise).

Requests are answered concurrently; with ``latency`` each waits a seeded random delay first, so replies
come back in another order than asked. On a seeded fraction of requests it answers 429 (with
``Retry-After``) or 500, drops the connection without a reply, or replies late, in turn.

``python -m tests.chat_server --port P`` serves the embedded teachers in a process of its own (a test can
``kill -9`` it and start it again on the same port); it prints its URL when it listens.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import random
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import soundfile as sf

from afcot_core.audio import audio_ref_from_wave
from afcot_core.teacher import Request, Teacher

FAULTS = ("429", "500", "drop", "slow")
KEY = "sk-chat-server-test-key"


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


class Latency:
    """A seeded random delay before each reply, uniform in [0, ``max_s``]: replies overtake one another."""

    def __init__(self, seed: int, max_s: float = 0.05) -> None:
        self._rng, self.max_s = random.Random(seed), max_s
        self._lock = threading.Lock()

    def next(self) -> float:
        with self._lock:
            return self._rng.uniform(0, self.max_s)


class ChatServer:
    """``teachers`` maps a served model name to a teacher; ``faults`` says which requests misbehave."""

    def __init__(self, teachers: dict[str, Teacher], key: str, faults: Faults | None = None, slow_s: float = 1.5,
                 retry_after: str = "1", latency: Latency | None = None, port: int = 0) -> None:
        self.teachers, self.key, self.faults = teachers, key, faults or Faults()
        self.slow_s, self.retry_after, self.latency = slow_s, retry_after, latency
        self._lock = threading.Lock()  # one generate at a time: the tiny models are not thread-safe
        #: bodies answered with 200, in order
        self.answered: list[dict[str, Any]] = []
        #: the prompt token ids of each request a transformers Qwen3 answered, in order
        self.prompt_ids: list[list[int]] = []
        #: requests being handled now, and the most at once
        self.active = self.peak_active = 0
        #: while true, every request and probe is answered 503 (a gateway in front of an engine that is gone)
        self.unavailable = False
        self.http = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()

    def _check(self, body: dict[str, Any], config: Any) -> str | None:
        wanted = {"temperature": config.temperature}
        if hasattr(config, "max_new_tokens"):
            wanted["max_tokens"] = config.max_new_tokens
        if config.temperature > 0:
            wanted.update(top_p=config.top_p, top_k=config.top_k)
        if hasattr(config, "enable_thinking"):
            wanted["chat_template_kwargs"] = {"enable_thinking": config.enable_thinking}
        if any(body.get(k) != v for k, v in wanted.items()):
            return f"sampling settings differ from the model's: {wanted}"
        return None

    @staticmethod
    def _malformed(messages: Any) -> str | None:
        """What is wrong with ``messages`` for the chat-completions API (a real server answers 400), or None."""
        if not isinstance(messages, list) or not messages:
            return "messages: a non-empty list"
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or set(m) != {"role", "content"}:
                return f"messages[{i}]: exactly 'role' and 'content'"
            if m["role"] not in ("system", "user", "assistant"):
                return f"messages[{i}].role: {m['role']!r} is not system, user or assistant"
            parts = m["content"] if isinstance(m["content"], list) else None
            if parts is None and not isinstance(m["content"], str):
                return f"messages[{i}].content: a string or a list of parts"
            for part in parts or []:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and set(part) == {"type", "text"} and isinstance(part["text"], str):
                    continue
                audio = part.get("input_audio") if kind == "input_audio" and set(part) == {"type", "input_audio"} \
                    else None
                if not (isinstance(audio, dict) and set(audio) == {"data", "format"} and audio["format"] == "wav"):
                    return f"messages[{i}].content: a text part or an input_audio part of wav data, not {part!r:.80}"
        return None

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if problem := self._malformed(body.get("messages")):
            return 400, {"error": {"message": problem}}
        teacher = self.teachers.get(body.get("model", ""))
        if teacher is None:
            return 404, {"error": {"message": f"no model {body.get('model')!r}"}}
        problem = self._check(body, getattr(teacher, "config", None) or teacher._sampling)
        if problem:
            return 400, {"error": {"message": problem}}
        if hasattr(teacher, "lm") and hasattr(teacher.config, "enable_thinking"):  # type: ignore[attr-defined]
            with self._lock:
                reply = self._as_vllm(teacher, body)
                self.answered.append(body)
        else:
            request = self._request(body)
            with self._lock:
                reply = teacher.generate([request])[0]
                self.answered.append(body)
        return 200, {"id": f"chat-{len(self.answered)}", "object": "chat.completion", "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": reply}}]}

    @staticmethod
    def _request(body: dict[str, Any]) -> Request:
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
        return Request(text, audio, prefix, body.get("seed"))

    def _as_vllm(self, teacher: Any, body: dict[str, Any]) -> str:
        """A transformers Qwen3 answering as vLLM's chat endpoint does: template, generate, decode."""
        import torch
        from afcot_qwen import hf

        tok, config = teacher.tok, teacher.config
        prompt = tok.apply_chat_template(
            body["messages"], tokenize=False, add_generation_prompt=body.get("add_generation_prompt", True),
            continue_final_message=body.get("continue_final_message", False), **body.get("chat_template_kwargs", {}))
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        self.prompt_ids.append(list(ids))
        enc = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
        out = hf._generate(teacher.lm, tok, enc, config, [body.get("seed", config.seed)])[0]
        stop = teacher.lm.generation_config.eos_token_id
        stops = set(stop if isinstance(stop, list) else [stop]) | {tok.pad_token_id}
        cut = next((i for i, t in enumerate(out) if t in stops), len(out))  # the stop token is not in the text
        return tok.decode(out[:cut], skip_special_tokens=body.get("skip_special_tokens", True))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._send_bytes(status, json.dumps(payload).encode(), {"Content-Type": "application/json",
                                                                         **(headers or {})})

            def _send_bytes(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if server.unavailable:
                    return self._send(503, {"error": {"message": "no healthy upstream"}})
                if self.path in ("/v1/models", "/health"):
                    return self._send(200, {"object": "list", "data": [{"id": name, "object": "model"}
                                                                        for name in server.teachers]})
                return self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if server.unavailable:
                    return self._send(503, {"error": {"message": "no healthy upstream"}})
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
                if fault == "null content":  # all of the output went to a reasoning parser (scripted only)
                    return self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant",
                                                                                 "content": None}}]})
                if fault == "no choices":  # scripted only
                    return self._send(200, {"object": "chat.completion", "choices": []})
                if fault == "not json":  # a proxy's error page with a 200 (scripted only)
                    return self._send_bytes(200, b"<html>bad gateway</html>", {"Content-Type": "text/html"})
                with server._lock:
                    server.active += 1
                    server.peak_active = max(server.peak_active, server.active)
                try:
                    if server.latency is not None:
                        time.sleep(server.latency.next())
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                        self._send(*server.answer(body))
                finally:
                    with server._lock:
                        server.active -= 1
                return None

        return Handler


def embedded_teachers() -> dict[str, Teacher]:
    """The embedded teachers with their default configs, by the names recipes ask the servers for."""
    from afcot_embedded.alm import EmbeddedAlm, EmbeddedAlmConfig
    from afcot_embedded.llm import EmbeddedLlm, EmbeddedLlmConfig

    return {"embedded-llm": EmbeddedLlm(EmbeddedLlmConfig()), "embedded-alm": EmbeddedAlm(EmbeddedAlmConfig())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default=KEY)
    parser.add_argument("--latency-seed", type=int, default=None)
    parser.add_argument("--max-delay", type=float, default=0.05)
    args = parser.parse_args(argv)
    latency = Latency(args.latency_seed, args.max_delay) if args.latency_seed is not None else None
    server = ChatServer(embedded_teachers(), args.key, latency=latency, port=args.port)
    print(server.url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.http.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
