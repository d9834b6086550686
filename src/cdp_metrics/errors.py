"""Exceptions that carry an exit code and a one-line message (contract §6 exit codes)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_DATA = 1  # invalid data under --strict, unreadable or empty input
EXIT_USAGE = 2  # bad option, unknown LA code


class CdpError(Exception):
    """An error the CLI reports as one line on stderr, exiting with `exit_code`."""

    exit_code = EXIT_DATA

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(CdpError):
    """Unreadable, empty or (under --strict) invalid input: exit 1."""

    exit_code = EXIT_DATA


class UsageError(CdpError):
    """A bad option value or an unknown LA code: exit 2."""

    exit_code = EXIT_USAGE
