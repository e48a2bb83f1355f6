"""Errors every door shows the same way. Each carries the CLI exit code."""

from __future__ import annotations


class ServiceError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """Bad input: nothing was changed."""

    exit_code = 2


class NotFound(ServiceError):
    exit_code = 3


class Conflict(ServiceError):
    """Someone else changed the order since it was read (optimistic locking)."""

    exit_code = 4


class Denied(ServiceError):
    exit_code = 5


class RuleViolation(ServiceError):
    """The domain does not allow this now (e.g. an illegal transition)."""

    exit_code = 1
