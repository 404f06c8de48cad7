"""Run localstripe's own aiohttp app on loopback, in memory (`python -m bench.localstripe_server`).

localstripe's `start()` binds every interface (`::`), first loads the store it pickled last
time, and writes an access-log line per request to stderr. For the benchmark it runs as
shipped otherwise: the same app object and the same store, which still pickles itself on
every write as localstripe does (that is the cost that makes it slow down as it grows), only
into a private file instead of the shared /tmp/localstripe.pickle.
"""

from __future__ import annotations

import argparse
import pickle
from typing import Any

from aiohttp import web


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench.localstripe_server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pickle-path", required=True, help="where the store pickles itself")
    ap.add_argument("--no-pickle", action="store_true", help="skip localstripe's store dumps")
    args = ap.parse_args(argv)

    from localstripe import resources, server

    path: str = args.pickle_path

    def dump_to_disk(self: Any) -> None:  # localstripe's Store.dump_to_disk, another path
        with open(path, "wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)

    def no_dump(self: Any) -> None:
        return None

    resources.Store.dump_to_disk = no_dump if args.no_pickle else dump_to_disk
    print(f"localstripe listening on http://{args.host}:{args.port}", flush=True)
    web.run_app(server.app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
