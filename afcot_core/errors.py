"""Exceptions with a meaning for the CLI: bad input exits 2, any other failure exits 1."""


class AfcotError(Exception):
    """Base class of afcot's own errors."""


class BadInput(AfcotError):
    """The user's input (recipe, file, option) is wrong; the CLI exits 2 and nothing is created."""


class Rejected(AfcotError):
    """An item cannot become a training record; ``reason`` says why and lands in the rejects file."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(AfcotError):
    """A teacher backend's signal that a call may succeed later (rate limit, overload, 5xx); it is retried."""


class TeacherError(AfcotError):
    """A teacher request that still failed after its retries; the item becomes ``failed`` and is redone later."""


class RunIncomplete(AfcotError):
    """A stage finished with items that failed; their shards stay open, and running the same command again
    redoes them. The CLI exits 1."""


#: exceptions that mean a bug in code (ours or a plugin's), never a fault of a teacher or of data:
#: they are not retried and not turned into ``failed`` records; they stop the run.
PROGRAMMING_ERRORS: tuple[type[BaseException], ...] = (
    TypeError, AttributeError, NameError, AssertionError, NotImplementedError, ImportError)
