"""The ``openai`` backend against vLLM's own OpenAI-compatible server (``nox -s vllm``; not part of pytest).

The server is ``python -m vllm.entrypoints.openai.api_server`` (``vllm serve`` does not start from vLLM's CPU
build) on a tiny random Qwen3, with ``--no-enable-chunked-prefill`` (seeded sampling with chunked prefill
kills the CPU engine). The quickstart's generate stage runs with ``qwen3`` as the LLM teacher:

1. greedy through the server: the records equal the transformers backend's (all but the fingerprint, which
   names the backend);
2. sampled through the server, twice: every shard and rejects file byte-identical;
3. sampled again with the server's process group killed (SIGKILL) once the first shard is done, then started
   again: exit 0 with default retry settings, the bytes of the fault-free run of 2;
4. figures: the engine's start time, requests/s through the teacher, and afcot / raw httpx client (the same
   bodies at the same concurrency, wall time, median of three alternated rounds; last line ``ratio: X``).

Prints one line per check and figure; exits 1 when a check fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart.toml"
sys.path.insert(0, str(ROOT / "tests"))

from vllm_check import check, held_back, save_qwen3  # noqa: E402

ITEMS, SHARD, NEW_TOKENS = 24, 6, 16


class VllmServer:
    """vLLM's OpenAI server on a fixed port, in a process group of its own (killed whole, like a lost node)."""

    def __init__(self, folder: Path, log: Path) -> None:
        self.folder, self.log = folder, log
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 600) -> float:
        """Start it and wait until ``/v1/models`` answers; the seconds that took."""
        import httpx

        args = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.folder),
                "--host", "127.0.0.1", "--port", str(self.port), "--dtype", "float32", "--seed", "0",
                "--max-model-len", "8192", "--gpu-memory-utilization", "0.1", "--no-enable-chunked-prefill",
                "--disable-uvicorn-access-log", "--disable-log-stats"]
        start = time.perf_counter()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        while time.perf_counter() - start < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM's server exited {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"vLLM's server did not answer within {timeout_s:g} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL to the server and its engine processes at once."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def llm_table(folder: Path, backend: str, url: str = "", temperature: float = 0.0) -> str:
    where = f'base_urls=["{url}"]' if backend == "openai" else 'device="cpu", dtype="float32"'
    sampling = f", top_p=0.95, top_k=20, temperature={temperature}" if temperature else ", temperature=0.0"
    return f'{{use="qwen3", backend="{backend}", model="{folder}", max_new_tokens={NEW_TOKENS}, {where}{sampling}}}'


def generate(out: Path, llm: str, **settings: object) -> subprocess.CompletedProcess[str]:
    """The quickstart's generate stage with ``llm`` as its LLM teacher, in a process of its own."""
    values = {"source.items": ITEMS, "shard_size": SHARD, "concurrency": 8, **settings}
    argv = [sys.executable, "-m", "afcot_core.cli", "recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet",
            "--stages", "generate", "--set", f"generate.llm={llm}",
            *(x for k, v in values.items() for x in ("--set", f"generate.{k}={json.dumps(v)}"))]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def outputs(out: Path) -> dict[str, bytes]:
    gen = out / "generate"
    return {p.name: p.read_bytes() for p in sorted([*gen.glob("shard-*.tar"), *gen.glob("rejects-*.jsonl")])}


def records(out: Path) -> list[dict[str, Any]]:
    """Every record of a run (accepted ones from the shards' JSON members, rejects from their files), by item."""
    import tarfile

    found = []
    gen = out / "generate"
    for shard in sorted(gen.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json") and (data := tar.extractfile(member)) is not None:
                    found.append(json.loads(data.read()))
    for rejects in sorted(gen.glob("rejects-*.jsonl")):
        found += [json.loads(line) for line in rejects.read_text().splitlines()]
    for r in found:
        r.pop("fingerprint", None)
    return sorted(found, key=lambda r: json.dumps(r.get("item", r), sort_keys=True))


def held_back_only(server: dict[str, Any], local: dict[str, Any]) -> bool:
    """Whether two records differ at most where vLLM holds text back: an LLM reply that ends inside a UTF-8
    character (random weights write any byte) is decoded by transformers with a trailing U+FFFD, while vLLM's
    incremental detokenizer keeps text that ends in U+FFFD back, waiting for the next token, and never sends it.
    """
    if {k: v for k, v in server.items() if k != "trace"} != {k: v for k, v in local.items() if k != "trace"}:
        return False
    calls = list(zip(server["trace"], local["trace"], strict=True))
    return all({**a, "reply": ""} == {**b, "reply": ""} and held_back(a["reply"], b["reply"]) for a, b in calls)


def greedy_tokens(server: VllmServer, folder: Path, got: list[dict[str, Any]], most: int = 24) -> bool:
    """The stage's LLM prompts over HTTP (vLLM's ``return_token_ids``) and through transformers: the same tokens."""
    import httpx
    from afcot_qwen.hf import _generate
    from afcot_qwen.prompts import qwen3_prompt
    from vllm_check import teacher

    from afcot_core import plugins as loader
    from afcot_core.teacher import Request

    plugins = loader.load()
    prompts = sorted({c["prompt"] for r in got for c in r["trace"] if c["role"] == "llm"})[:most]
    hf = teacher(plugins, folder, "transformers", temperature=0.0, max_new_tokens=NEW_TOKENS)
    remote = teacher(plugins, folder, "openai", temperature=0.0, max_new_tokens=NEW_TOKENS, base_urls=[server.url])
    same = 0
    for prompt in prompts:
        request = Request(prompt)
        body = {**remote.body(request), "return_token_ids": True}
        ids = httpx.post(f"{server.url}/chat/completions", json=body, timeout=600).json()["choices"][0]["token_ids"]
        enc = dict(hf.tok([qwen3_prompt(hf.tok, request, True)], return_tensors="pt", add_special_tokens=False))
        same += ids == _generate(hf.lm, hf.tok, enc, hf.config, [0])[0]
    return check("greedy tokens over vLLM's server == transformers, on the stage's LLM prompts",
                 same == len(prompts) > 0, f"{same} of {len(prompts)}")


def stage_checks(server: VllmServer, folder: Path, root: Path) -> list[bool]:
    results = []
    done = generate(root / "hf", llm_table(folder, "transformers"))
    greedy = generate(root / "greedy", llm_table(folder, "openai", server.url))
    results.append(check("generate stage runs: transformers and openai greedy exit 0",
                         done.returncode == greedy.returncode == 0, (done.stderr + greedy.stderr)[-2000:]))
    got, expected = records(root / "greedy"), records(root / "hf")
    results.append(check("greedy records over vLLM's server == transformers backend, but for held-back text",
                         len(got) == len(expected) == ITEMS and all(map(held_back_only, got, expected)),
                         f"{sum(a == b for a, b in zip(got, expected, strict=True))} of {ITEMS} records identical; "
                         f"the others differ only at the end of replies cut inside a UTF-8 character"))
    results.append(greedy_tokens(server, folder, got))
    sampled = llm_table(folder, "openai", server.url, temperature=0.8)
    first, second = generate(root / "sampled-1", sampled), generate(root / "sampled-2", sampled)
    results.append(check("sampled over vLLM's server: two runs byte-identical",
                         first.returncode == second.returncode == 0 and
                         outputs(root / "sampled-1") == outputs(root / "sampled-2") != {},
                         f"{len(outputs(root / 'sampled-1'))} files"))
    results.append(check("sampled records differ from greedy", records(root / "sampled-1") != got))
    return results + kill_check(server, sampled, root)


def kill_check(server: VllmServer, sampled: str, root: Path) -> list[bool]:
    """SIGKILL of the only server once the first shard is done, started again at once (an engine start later)."""
    out = root / "killed"
    down: dict[str, float] = {}

    def killer() -> None:
        deadline = time.time() + 600
        while not list((out / "generate").glob("*.done.json")) and time.time() < deadline:
            time.sleep(0.05)
        server.kill()
        down["killed"] = time.perf_counter()
        down["restart_s"] = server.start()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = generate(out, sampled)
    thread.join()
    events = [json.loads(line)["event"] for line in (out / "logs/run.jsonl").read_text().splitlines()]
    print(f"kill -9 mid-run: the server was down {down.get('restart_s', float('nan')):.1f} s (an engine start)")
    same = outputs(out) == outputs(root / "sampled-1")
    return [check("kill -9 of vLLM's server mid-run, restarted: exit 0", result.returncode == 0, result.stderr[-2000:]),
            check("... the records equal the fault-free run byte for byte", same),
            check("... the run waited for the server and resumed",
                  "waiting for servers: 0 of 1 up" in events and "servers back: 1 of 1 up" in events,
                  str([e for e in events if "server" in e]))]


def throughput(server: VllmServer, folder: Path, n: int = 128, concurrency: int = 16) -> float:
    """requests/s through the teacher, and afcot / raw httpx wall time on the same bodies; returns the ratio."""
    import httpx
    import msgspec

    from afcot_core import plugins as loader
    from afcot_core.teacher import Request

    reg = loader.load().registry("teacher_llm").get("qwen3")
    config = msgspec.convert({"model": str(folder), "backend": "openai", "base_urls": [server.url],
                              "max_new_tokens": NEW_TOKENS, "temperature": 0.0,
                              "max_requests_per_server": concurrency}, reg.config)
    teacher = reg.build(config)
    requests = [Request(f"Question {i}: what makes the sound of rain on a roof?") for i in range(n)]
    bodies = [teacher.body(r) for r in requests]

    async def raw() -> None:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=600) as client:
            async def one(body: dict[str, Any]) -> None:
                async with gate:
                    (await client.post(f"{server.url}/chat/completions", json=body)).raise_for_status()

            await asyncio.gather(*(one(b) for b in bodies))

    def timed(call: Any) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    teacher.generate(requests[:concurrency])  # warm both paths once
    asyncio.run(raw())
    afcot_s, raw_s = [], []
    for _ in range(3):
        afcot_s.append(timed(lambda: teacher.generate(requests)))
        raw_s.append(timed(lambda: asyncio.run(raw())))
    ratio = statistics.median(afcot_s) / statistics.median(raw_s)
    print(f"requests/s over vLLM's server ({n} requests, {NEW_TOKENS} new tokens, concurrency {concurrency}): "
          f"afcot {n / statistics.median(afcot_s):.1f}, raw httpx {n / statistics.median(raw_s):.1f}; "
          f"rounds afcot {[round(s, 2) for s in afcot_s]} s, raw {[round(s, 2) for s in raw_s]} s")
    return ratio


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = save_qwen3(root / "qwen3", 0, max_positions=8192)  # byte tokens: prompts of ~2,000+
        server = VllmServer(folder, root / "server.log")
        try:
            print(f"vLLM OpenAI server start: {server.start():.1f} s", flush=True)
            results = stage_checks(server, folder, root)
            ratio = throughput(server, folder)
        except Exception:
            print(server.tail(), flush=True)
            raise
        finally:
            server.kill()
        print(f"ratio: {ratio:.2f}", flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
