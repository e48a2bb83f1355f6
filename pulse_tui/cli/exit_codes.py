"""The `pulse` command's exit codes (documented in the README).

They match ``services.errors``: every ServiceError carries one of these as its
``exit_code``, so the TUI, the CLI and scripts agree on what went wrong.
"""

from __future__ import annotations

OK = 0  # done
FAILED = 1  # the action is not allowed now (e.g. an illegal transition)
BAD_INPUT = 2  # bad usage or input: nothing was changed
NOT_FOUND = 3  # no such order / operator / customer / product
CONFLICT = 4  # changed by someone else (optimistic locking), or already exists
DENIED = 5  # no acting operator, unknown/disabled operator, or role may not

ALL = {
    "OK": OK,
    "FAILED": FAILED,
    "BAD_INPUT": BAD_INPUT,
    "NOT_FOUND": NOT_FOUND,
    "CONFLICT": CONFLICT,
    "DENIED": DENIED,
}
