"""JSON repair of teacher replies: the right object found, and time linear in the reply even when it is hostile."""

import time

import msgspec
import pytest

from afcot_core.jsonreply import ReplyError, parse_json_reply


class Answer(msgspec.Struct):
    answer: str


@pytest.mark.parametrize(("reply", "answer"), [
    ('a {"answer": "x { y"} and then {"answer": "dog"}', "dog"),
    ('{"answer": "say \\"}\\" {"} trailing words', 'say "}" {'),
    ('He is 6\'2" tall {no. Then {"answer": "dog"}', "dog"),
    ('outer {"note": 1, "inner": {"answer": "dog"}} end', "dog"),
    ("{" * 5000 + '{"answer": "dog"}', "dog"),
])
def test_the_last_object_is_found(reply, answer):
    assert parse_json_reply(reply, Answer).answer == answer


@pytest.mark.parametrize("reply", ['{"a":' * 30000, "[" * 30000, "{" * 30000 + "}" * 30000])
def test_absurd_nesting_is_a_reply_error_not_a_crash(reply):
    with pytest.raises(ReplyError):
        parse_json_reply(reply, Answer)


def _seconds(reply: str) -> float:
    """CPU seconds of this process (other processes on a loaded machine do not count), best of three."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        with pytest.raises(ReplyError):
            parse_json_reply(reply, Answer)
        best = min(best, time.process_time() - started)
    return best


@pytest.mark.parametrize("unit", ["{", '{"answer": ', "{x}", '"{'])
def test_hostile_replies_take_time_linear_in_their_length(unit):
    small, large = _seconds(unit * 10_000), _seconds(unit * 80_000)
    assert large < 1.5, f"{len(unit * 80_000)} characters took {large:.2f} s"
    assert large / small < 30, f"8x the text took {large / small:.0f}x the time (linear: 8x, quadratic: 64x)"
