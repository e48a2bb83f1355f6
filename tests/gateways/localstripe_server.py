"""Run localstripe on 127.0.0.1:PORT with no state on disk.

localstripe pickles its whole store to /tmp/localstripe.pickle after every
write and reloads it at start (unless --from-scratch). Two test runs at once
would share and clobber that file, so this launcher turns both off: every run
starts empty and keeps its state in memory only.

Usage: python -m tests.gateways.localstripe_server PORT
"""

from __future__ import annotations

import sys

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    port = int(sys.argv[1])
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
