import asyncio
import threading
import time

import msgspec
import numpy as np
import pytest

from afcot_core.errors import TeacherError
from afcot_core.jsonreply import ReplyError, parse_json_reply
from afcot_core.teacher import Batching, Reply, Request, RetryPolicy, Sampling, Teacher, request_seed


class Echo(Teacher):
    """A tiny engine that records the batches it is given."""

    role = "llm"
    model = "echo"

    def __init__(self, batching: Batching, fail_on: str | None = None) -> None:
        super().__init__(batching)
        self.batches: list[list[str]] = []
        self.in_flight = self.peak = 0
        self.fail_on = fail_on

    def generate(self, requests: list[Request]) -> list[str]:
        import time

        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        time.sleep(0.01)
        self.in_flight -= 1
        self.batches.append([r.prompt for r in requests])
        if self.fail_on in [r.prompt for r in requests]:
            raise RuntimeError("engine error")
        return [r.prompt.upper() for r in requests]


async def _ask_all(teacher: Teacher, prompts: list[str]):
    return await asyncio.gather(*(teacher.ask(p) for p in prompts), return_exceptions=True)


def test_concurrent_requests_are_coalesced_and_answers_stay_in_order():
    teacher = Echo(Batching(max_batch=8, max_wait_ms=20))
    prompts = [f"p{i}" for i in range(20)]
    replies = asyncio.run(_ask_all(teacher, prompts))
    assert [r.text for r in replies] == [p.upper() for p in prompts]
    assert [len(b) for b in teacher.batches] == [8, 8, 4]
    assert teacher.batch_sizes == [8, 8, 4]


def test_max_concurrency_bounds_in_flight_batches():
    teacher = Echo(Batching(max_batch=2, max_wait_ms=0, max_concurrency=3))
    asyncio.run(_ask_all(teacher, [f"p{i}" for i in range(24)]))
    assert 1 < teacher.peak <= 3


def test_an_engine_error_fails_only_the_failing_request():
    teacher = Echo(Batching(max_batch=2, max_wait_ms=5), fail_on="p1")
    teacher.use_retry(RetryPolicy(retries=1, backoff_s=0.001))
    replies = asyncio.run(_ask_all(teacher, ["p0", "p1", "p2", "p3"]))
    assert isinstance(replies[1], TeacherError) and "engine error" in str(replies[1])
    assert [r.text for r in (replies[0], *replies[2:])] == ["P0", "P2", "P3"]


@pytest.mark.parametrize("bad", [{"max_batch": 0}, {"max_concurrency": 0}, {"max_wait_ms": -1}])
def test_batching_config_is_checked(bad):
    with pytest.raises(ValueError) as err:
        Batching(**bad)
    assert str(err.value) == "max_batch and max_concurrency must be >= 1 and max_wait_ms >= 0"
    Batching(max_batch=1, max_concurrency=1, max_wait_ms=0)


def test_a_teacher_is_sampled_when_its_sampling_has_a_temperature():
    class Plain(Echo):
        def __init__(self, sampling: Sampling | None) -> None:
            Teacher.__init__(self, Batching(), sampling)

    assert Plain(Sampling(temperature=0.6)).sampled
    assert not Plain(Sampling()).sampled and not Plain(None).sampled
    for bad in ({"temperature": -0.1}, {"top_p": 0.0}, {"top_p": 1.1}, {"top_k": -1}):
        with pytest.raises(ValueError) as err:
            Sampling(**bad)
        assert str(err.value) == "temperature must be >= 0, top_p in (0, 1], top_k >= 0"


def test_a_request_seed_is_a_fixed_31_bit_function_of_the_run_seed_item_step_and_attempt():
    # pinned: a release that changed these would change every sampled reply of every recipe
    assert request_seed(0, "item-1", "predict", 0) == 5690324
    assert request_seed(7, "x", "caption", 2) == 2082159243
    seeds = {request_seed(s, i, st, a) for s in (0, 1) for i in ("a", "b") for st in ("p", "q") for a in (0, 1)}
    assert len(seeds) == 16 and all(0 <= x < 2**31 for x in seeds)


class Answer(msgspec.Struct):
    answer: str


@pytest.mark.parametrize("reply", [
    '{"answer": "dog"}',
    '```json\n{"answer": "dog"}\n```',
    'Sure! Here it is: {"answer": "cat"} and finally {"answer": "dog"} hope that helps',
    '<think>{"answer": "no"}</think>\n{"answer": "dog"}',
])
def test_json_replies_are_repaired(reply):
    assert parse_json_reply(reply, Answer).answer == "dog"


@pytest.mark.parametrize("reply", ["", "no json here", '{"answer": 3', '{"other": 1}', "[1, 2]"])
def test_unusable_replies_raise(reply):
    with pytest.raises(ReplyError):
        parse_json_reply(reply, Answer)


class Slow(Echo):
    def generate(self, requests):
        import time

        time.sleep(0.05)
        return super().generate(requests)


def test_requests_arriving_while_the_engine_is_busy_join_the_next_batch():
    teacher = Slow(Batching(max_batch=64, max_wait_ms=1))

    async def scenario():
        first = asyncio.create_task(teacher.ask("early"))
        await asyncio.sleep(0.01)  # the engine is now busy with the first batch
        late = []
        for i in range(10):
            late.append(asyncio.create_task(teacher.ask(f"late{i}")))
            await asyncio.sleep(0.002)
        await asyncio.gather(first, *late)

    asyncio.run(scenario())
    assert [len(b) for b in teacher.batches] == [1, 10]


def test_a_teacher_serves_one_event_loop_after_another():
    teacher = Echo(Batching(max_batch=4, max_wait_ms=5))
    for _ in range(3):
        assert [r.text for r in asyncio.run(_ask_all(teacher, ["a", "b"]))] == ["A", "B"]


def test_engine_calls_run_in_named_daemon_threads():
    class Where(Echo):
        def generate(self, requests):
            self.thread = threading.current_thread()
            return super().generate(requests)

    teacher = Where(Batching(max_batch=1, max_wait_ms=0))
    asyncio.run(_ask_all(teacher, ["p"]))
    assert teacher.thread.daemon and teacher.thread.name == "afcot-teacher"


def test_a_full_batch_goes_at_once_without_waiting_max_wait_ms():
    teacher = Echo(Batching(max_batch=2, max_wait_ms=10_000))
    started = time.perf_counter()
    replies = asyncio.run(_ask_all(teacher, ["p0", "p1"]))
    assert time.perf_counter() - started < 5
    assert [r.text for r in replies] == ["P0", "P1"] and teacher.batches == [["p0", "p1"]]


def test_an_engine_that_answers_the_wrong_number_of_requests_is_named():
    class Short(Echo):
        def generate(self, requests):
            return super().generate(requests)[:-1]

    teacher = Short(Batching(max_batch=2, max_wait_ms=50))
    teacher.use_retry(RetryPolicy(retries=0, backoff_s=0.001))
    replies = asyncio.run(_ask_all(teacher, ["p0", "p1"]))
    assert all(isinstance(r, TeacherError) for r in replies)
    assert "engine returned 0 replies for 1 requests" in str(replies[0])


def test_remembering_without_a_cache_does_nothing():
    teacher = Echo(Batching())
    asyncio.run(teacher.remember([Reply("x", 0.0, key="k")]))


class Prefixed(Echo):
    """Echoes each request's prompt and answer prefix."""

    def generate(self, requests):
        super().generate(requests)
        return [f"{r.prompt}|{r.prefix}" for r in requests]


def test_a_request_has_no_prefix_unless_given_and_its_latency_is_measured():
    teacher = Prefixed(Batching(max_batch=1, max_wait_ms=0))
    plain = asyncio.run(teacher.ask("p"))
    assert plain.text == "p|" and 0 < plain.latency_s < 60 and not plain.cache_hit and plain.key == ""
    assert asyncio.run(teacher.ask("p", prefix="<x>")).text == "p|<x>"


def test_cache_keys_count_attempts_from_zero_and_a_hit_is_marked(tmp_path):
    from afcot_core.cache import ReplayCache
    from afcot_core.records import AudioRef

    cache = ReplayCache(tmp_path / "replay.sqlite")
    clip = AudioRef(path="a.wav", sha256="abc")
    teacher = Prefixed(Batching(max_batch=1, max_wait_ms=0))
    teacher.use_cache(cache, "scope")
    first = asyncio.run(teacher.ask("p", clip, prefix="<x>"))
    assert first.key == ReplayCache.key("scope", "0:None:p", "<x>", clip) and not first.cache_hit
    asyncio.run(teacher.remember([first]))
    again = Prefixed(Batching(max_batch=1, max_wait_ms=0))
    again.use_cache(cache, "scope")
    hit = asyncio.run(again.ask("p", clip, prefix="<x>"))
    assert (hit.text, hit.latency_s, hit.cache_hit, hit.key) == ("p|<x>", 0.0, True, first.key)
    assert again.batches == []
    asyncio.run(again.remember([hit]))  # a hit is not written again
    cache.close()


def test_a_request_is_tried_retries_plus_one_times_then_fails_naming_the_model_and_error():
    teacher = Echo(Batching(max_batch=1, max_wait_ms=0), fail_on="p")
    teacher.use_retry(RetryPolicy(retries=2, backoff_s=0.0))
    with pytest.raises(TeacherError) as err:
        asyncio.run(teacher.ask("p"))
    assert str(err.value) == "echo: RuntimeError: engine error (after 3 tries)"
    assert teacher.batches == [["p"]] * 3


def test_a_batch_fills_while_the_dispatcher_waits():
    async def staggered(teacher):
        first = asyncio.create_task(teacher.ask("p0"))
        await asyncio.sleep(0.2)  # the dispatcher is waiting for a second request
        return await asyncio.gather(first, teacher.ask("p1"))

    teacher = Echo(Batching(max_batch=2, max_wait_ms=10_000))
    started = time.perf_counter()
    replies = asyncio.run(staggered(teacher))
    assert time.perf_counter() - started < 5 and [r.text for r in replies] == ["P0", "P1"]
    assert teacher.batches == [["p0", "p1"]]


class Delayed(Teacher):
    """Answers each prompt in upper case, those starting with ``slow_prefix`` after ``delay_s``, any number at once."""

    role, model, offload = "llm", "delayed", False

    def __init__(self, slow_prefix: str, delay_s: float) -> None:
        super().__init__(Batching(max_batch=1, max_wait_ms=0, max_concurrency=8))
        self.slow_prefix, self.delay_s = slow_prefix, delay_s

    async def _submit(self, request: Request) -> str:
        await asyncio.sleep(self.delay_s if request.prompt.startswith(self.slow_prefix) else 0.0)
        return request.prompt.upper()

    def generate(self, requests: list[Request]) -> list[str]:
        raise NotImplementedError


def test_a_branch_s_later_calls_keep_their_place_in_the_trace_whatever_replies_come_first():
    """Two concurrent branches of two calls each: the second branch's replies come first, the trace does not care."""
    from afcot_core.protocols import ItemContext

    teacher = Delayed("a", 0.05)

    async def branch(ctx: ItemContext, name: str) -> None:
        await ctx.llm(f"{name}1")
        await ctx.llm(f"{name}2")

    async def scenario() -> list[str]:
        ctx = ItemContext(teacher, teacher, item_id="i")
        await ctx.llm("first")
        await asyncio.gather(branch(ctx, "a"), branch(ctx, "b"))
        await ctx.llm("last")
        return [call.prompt for call in ctx.trace]

    assert asyncio.run(scenario()) == ["first", "a1", "a2", "b1", "b2", "last"]


def test_a_step_that_fails_lets_its_siblings_finish_so_the_trace_never_depends_on_timing():
    """One step is rejected at once while its sibling still waits for its reply: the sibling's call is in the
    trace all the same (the failure is raised once every step has ended), and of two failures the first
    argument's is raised, not the first to happen."""
    from afcot_core.errors import Rejected
    from afcot_core.protocols import ItemContext

    teacher = Delayed("slow", 0.1)

    async def rejected(ctx: ItemContext, why: str, after: str) -> None:
        await ctx.llm(after)
        raise Rejected(why)

    async def scenario() -> tuple[list[str], str]:
        ctx = ItemContext(teacher, teacher, item_id="i")
        with pytest.raises(Rejected) as first:
            await ctx.gather(rejected(ctx, "first", "fast"), ctx.llm("slow reasoning"))
        with pytest.raises(Rejected) as second:
            await ctx.gather(rejected(ctx, "later", "slow one"), rejected(ctx, "sooner", "fast two"))
        return [call.prompt for call in ctx.trace], f"{first.value} {second.value}"

    prompts, raised = asyncio.run(scenario())
    assert prompts == ["fast", "slow reasoning", "slow one", "fast two"] and raised == "first later"


class DeadEngine(Echo):
    """An engine that can answer nothing: every call records its batch and raises ``EngineDead``."""

    def generate(self, requests: list[Request]) -> list[str]:
        from afcot_core.batcher import EngineDead

        self.batches.append([r.prompt for r in requests])
        raise EngineDead("the engine died")


def test_a_dead_engine_is_neither_split_nor_retried():
    from afcot_core.batcher import EngineDead

    teacher = DeadEngine(Batching(max_batch=4, max_wait_ms=20))
    teacher.use_retry(RetryPolicy(retries=3, backoff_s=0.001))
    replies = asyncio.run(_ask_all(teacher, ["p0", "p1", "p2", "p3"]))
    assert all(isinstance(r, EngineDead) for r in replies) and len(teacher.batches) == 1



def test_requests_queued_behind_a_dying_engine_call_fail_without_another_engine_call():
    """The dispatcher waits for the engine's one slot while the engine dies: it must not call it with nothing."""
    from afcot_core.batcher import EngineDead

    class Dying(Echo):
        def generate(self, requests):
            self.batches.append([r.prompt for r in requests])
            time.sleep(0.05)
            raise EngineDead("the engine died")

    async def scenario():
        replies = await _ask_all(teacher, [f"p{i}" for i in range(6)])
        await asyncio.sleep(0.1)  # the run goes on: the dispatcher gets its slot back
        return replies

    teacher = Dying(Batching(max_batch=2, max_wait_ms=1, max_concurrency=1))
    replies = asyncio.run(scenario())
    assert all(isinstance(r, EngineDead) for r in replies)
    assert teacher.batches == [["p0", "p1"]]

def test_the_built_in_strategies_run_an_item_s_concurrent_steps_through_its_context():
    """``asyncio.gather`` would leave a failing step's siblings running while the record is made."""
    from .conftest import ROOT

    found = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "plugins").glob("afcot_*/*.py"))
             if p.parent.name in ("afcot_paper", "afcot_embedded")
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if "asyncio.gather(" in line]
    assert found == [], "use ctx.gather: " + ", ".join(found)


def test_a_call_abandoned_by_a_loop_that_has_ended_finishes_quietly_in_its_thread(monkeypatch):
    """A hung engine call is given up (its timeout) and the run's loop ends; when the call returns at last, its
    thread finds the loop gone and ends without an error of its own (nothing printed, nothing raised)."""
    from afcot_core.batcher import in_daemon_thread

    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    release = threading.Event()
    before = set(threading.enumerate())  # other tests' abandoned calls may still be running

    async def abandoned() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(in_daemon_thread(release.wait, 5), 0.05)

    asyncio.run(abandoned())
    (worker,) = [t for t in threading.enumerate() if t.name == "afcot-teacher" and t not in before]
    release.set()
    worker.join(5)
    assert not worker.is_alive() and errors == []


def test_an_outage_budget_may_be_zero_or_fractional_never_negative():
    assert RetryPolicy(outage_s=0).outage_s == 0 and RetryPolicy(outage_s=0.5).outage_s == 0.5
    with pytest.raises(ValueError, match=r"^outage_s must be >= 0$"):
        RetryPolicy(outage_s=-0.1)


def test_the_engine_is_given_each_request_s_audio_and_prefix():
    from afcot_core.audio import audio_ref_from_wave

    seen: list[Request] = []

    class Recording(Echo):
        def generate(self, requests):
            seen.extend(requests)
            return ["ok"] * len(requests)

    clip = audio_ref_from_wave(np.zeros(1600, dtype=np.float32), 16000)
    teacher = Recording(Batching(max_batch=4, max_wait_ms=1.0))
    asyncio.run(teacher.ask("what is heard?", audio=clip, prefix="It is"))
    assert seen[0].audio == clip and seen[0].prefix == "It is" and seen[0].prompt == "what is heard?"


def test_after_the_engine_died_a_new_request_fails_at_once_without_an_engine_call():
    from afcot_core.batcher import EngineDead

    teacher = DeadEngine(Batching(max_batch=4, max_wait_ms=1.0))
    for prompt in ("first", "later"):
        with pytest.raises(EngineDead, match="the engine died"):
            asyncio.run(teacher.ask(prompt))
    assert teacher.batches == [["first"]]  # the later request never reached the dead engine
