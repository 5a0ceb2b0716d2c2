"""``ocec-jobs api``: the HTTP API alone, for the distributed layout.

It reads ``DATABASE_URL`` / ``REDIS_URL`` (and the rest of ``jobstore.settings``) from the
environment; workers run elsewhere with the same two URLs. The schema must already be at head
(``ocec-jobs up`` migrates for you; a deployment runs its migrate step first). With ``--workers N``
uvicorn's worker processes die with this one, even when it is killed with SIGKILL.
"""

from __future__ import annotations

import argparse

from ocec_jobs.cli.main import SubParsers

APP_FACTORY = "api.main:create_served_app"  # by name: ocec_jobs never imports api (import-linter contract)
GRACEFUL_SHUTDOWN_S = 5  # open SSE streams must not hold a shutdown forever


def register(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser("api", help="run the HTTP API only (uses DATABASE_URL and REDIS_URL)")
    add_server_flags(parser)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.set_defaults(handler=run)


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        workers=getattr(args, "workers", 1),
        log_level=args.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        proxy_headers=True,
    )
    return 0
