"""Identical requests in flight sent once; server load bounded by requests and tokens."""

import asyncio

import pytest
from afcot_qwen.budget import TokenBudget

from afcot_core.inflight import InFlight
from afcot_core.teacher import Batching, Request, Teacher


class Counting(Teacher):
    """An engine that records every request it is given."""

    role = "llm"
    offload = False

    def __init__(self, sampled: bool) -> None:
        super().__init__(Batching(max_batch=64, max_wait_ms=5))
        self.sampled = sampled
        self.seen: list[Request] = []

    def generate(self, requests: list[Request]) -> list[str]:
        self.seen += requests
        return [f"{r.prompt}/{r.seed if self.sampled else '-'}" for r in requests]


@pytest.mark.parametrize("sampled", [False, True])
def test_identical_requests_go_once_and_seeds_matter_only_when_sampling(sampled):
    teacher = Counting(sampled)

    async def ask_all():
        return await asyncio.gather(*(teacher.ask("describe the label 'dog'", seed=s % 3) for s in range(11)),
                                    teacher.ask("another question", seed=0))

    replies = asyncio.run(ask_all())
    assert len(teacher.seen) == (4 if sampled else 2)
    assert len({r.text for r in replies[:11]}) == (3 if sampled else 1)
    assert teacher._inflight.shared == 12 - len(teacher.seen) and len(teacher._inflight) == 0


def test_waiters_share_an_error_and_a_cancelled_waiter_does_not_cancel_the_call():
    inflight: InFlight[str] = InFlight()
    calls = []

    async def call(fail: bool) -> str:
        calls.append(fail)
        await asyncio.sleep(0.02)
        if fail:
            raise RuntimeError("engine down")
        return "ok"

    async def main():
        first = asyncio.ensure_future(inflight.run("k", lambda: call(False)))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(inflight.run("k", lambda: call(False)))
        await asyncio.sleep(0)
        first.cancel()
        errors = await asyncio.gather(*(inflight.run("e", lambda: call(True)) for _ in range(3)),
                                      return_exceptions=True)
        return await second, errors

    result, errors = asyncio.run(main())
    assert result == "ok" and calls.count(False) == 1 and calls.count(True) == 1
    assert all(isinstance(e, RuntimeError) for e in errors)


async def _load(budget: TokenBudget, costs: list[int], order: list[int], hold: float = 0.01) -> None:
    async def one(i: int, cost: int) -> None:
        async def work() -> None:
            order.append(i)
            await asyncio.sleep(hold)

        await budget(cost, work)

    tasks = []
    for i, cost in enumerate(costs):
        tasks.append(asyncio.ensure_future(one(i, cost)))
        await asyncio.sleep(0)  # arrive in order
    await asyncio.gather(*tasks)


def test_budget_bounds_requests_and_tokens_and_short_ones_pass_a_long_one():
    budget = TokenBudget(max_requests=4, max_tokens=100)
    order: list[int] = []
    asyncio.run(_load(budget, [60, 30, 80, 10, 10, 10], order))
    assert budget.peak_tokens <= 100 and budget.peak_requests <= 4
    assert order.index(3) < order.index(2)  # the short request 3 went ahead of the long request 2 waiting
    assert budget.requests == 0 and budget.tokens == 0


def test_budget_never_starves_a_long_request_and_runs_an_oversized_one_alone():
    budget = TokenBudget(max_requests=3, max_tokens=100)
    order: list[int] = []
    asyncio.run(_load(budget, [10, 95, *[10] * 12], order))  # short ones alone would keep 95 from ever fitting
    assert order.index(1) <= 1 + 3  # passed at most max_requests times, then the shorts wait for it
    budget = TokenBudget(max_requests=8, max_tokens=100)
    order = []
    asyncio.run(_load(budget, [10, 500, 10], order))
    assert budget.peak_tokens == 500 and budget.peak_requests <= 2 and sorted(order) == [0, 1, 2]


def test_requests_that_fill_the_token_budget_exactly_are_admitted_together():
    budget = TokenBudget(max_requests=4, max_tokens=100)
    order: list[int] = []
    asyncio.run(_load(budget, [50, 50, 1], order))
    assert budget.peak_tokens == 100 and budget.peak_requests == 2  # 50 + 50 fits; + 1 does not


class Plain(Teacher):
    """A teacher that never says whether it samples: only its ``config`` does."""

    role = "llm"
    offload = False

    def __init__(self, config: object) -> None:
        super().__init__(Batching(max_batch=64, max_wait_ms=5))
        self.config = config
        self.seen: list[Request] = []

    def generate(self, requests: list[Request]) -> list[str]:
        self.seen += requests
        return [f"{r.prompt}/{r.seed}" for r in requests]


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_a_request_carries_a_seed_only_when_its_teacher_samples_and_is_shared_only_when_equal(temperature):
    from afcot_core.teacher import Sampling

    teacher = Plain(Sampling(temperature=temperature))

    async def ask_all():
        return await asyncio.gather(*(teacher.ask("describe the label 'dog'", seed=s % 3) for s in range(9)))

    replies = asyncio.run(ask_all())
    if temperature == 0:  # greedy: the engine never sees a seed, and one call answers all
        assert [r.seed for r in teacher.seen] == [None]
        assert {r.text for r in replies} == {"describe the label 'dog'/None"}
    else:  # sampled: one call per seed, each caller gets its own seed's reply
        assert sorted(r.seed for r in teacher.seen) == [0, 1, 2]
        assert [r.text for r in replies] == [f"describe the label 'dog'/{s % 3}" for s in range(9)]


@pytest.mark.parametrize("max_requests", [3, 4])
def test_a_long_request_is_passed_exactly_max_requests_times_then_runs(max_requests):
    budget = TokenBudget(max_requests=max_requests, max_tokens=100)
    order: list[int] = []
    asyncio.run(_load(budget, [10, 95, *[10] * 12], order))
    assert order.index(1) == 1 + max_requests  # request 0, then max_requests short ones, then the long one


def test_budget_limits_are_checked_and_the_token_bound_is_off_by_default():
    for max_requests, max_tokens in ((0, 0), (0, 5), (1, -1)):
        with pytest.raises(ValueError, match=r"^max_requests must be >= 1 and max_tokens >= 0$"):
            TokenBudget(max_requests, max_tokens)
    fresh = TokenBudget(1, 0)
    assert TokenBudget(2, 1).max_requests == 2 and fresh.peak_tokens == fresh.peak_requests == 0
    budget = TokenBudget(max_requests=3)  # no token bound: large requests still run three at a time
    asyncio.run(_load(budget, [1000] * 3, []))
    assert budget.peak_requests == 3 and budget.peak_tokens == 3000


def test_the_request_bound_is_exact():
    budget = TokenBudget(max_requests=2, max_tokens=0)
    asyncio.run(_load(budget, [1] * 5, []))
    assert budget.peak_requests == 2


def test_a_waiter_cancelled_before_or_as_it_is_admitted_leaves_no_slot_taken():
    async def main(race: bool) -> TokenBudget:
        budget = TokenBudget(max_requests=1)
        await budget.acquire(5)  # the only slot is held
        waiter = asyncio.ensure_future(budget.acquire(7))
        await asyncio.sleep(0)  # waiting now
        if race:
            budget.release(5)  # admits the waiter, which is cancelled before it resumes
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        if not race:
            budget.release(5)
        await asyncio.wait_for(budget(3, lambda: asyncio.sleep(0)), 1)  # the slot is free again
        return budget

    for race in (False, True):
        budget = asyncio.run(main(race))
        assert budget.requests == 0 and budget.tokens == 0 and not budget._waiting


def test_a_failed_call_whose_callers_went_away_is_not_reported_as_lost():
    import gc

    reports: list[dict] = []

    async def fail() -> str:
        await asyncio.sleep(0.01)
        raise RuntimeError("engine down")

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reports.append(context))
        inflight: InFlight[str] = InFlight()
        caller = asyncio.ensure_future(inflight.run("k", fail))
        await asyncio.sleep(0)
        caller.cancel()  # nobody awaits the call any more; it fails later
        await asyncio.sleep(0.05)
        assert len(inflight) == 0
        gc.collect()

    asyncio.run(main())
    gc.collect()
    assert not [r for r in reports if "never retrieved" in r.get("message", "")], reports
