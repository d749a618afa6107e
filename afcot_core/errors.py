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
