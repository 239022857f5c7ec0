"""`runplane serve | worker | migrate | create-user | token | export-schema | register-operations`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from runplane.config import Settings, SettingsError, unknown_variables

if TYPE_CHECKING:
    from runplane.resolvers.context import RequestContext

T = TypeVar("T")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(resolve=False)
        if getattr(args, "existing_database", False):
            _refuse_a_new_embedded_database(settings)
        settings = settings.resolved()
    except SettingsError as error:
        sys.exit(f"runplane: {error}")  # exit status 1, the variable named, no traceback
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for line in unknown_variables(os.environ):
        logging.getLogger("runplane.config").warning(line)
    args.run(settings, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runplane", description="runplane control plane")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API server (uvicorn)")
    serve.add_argument("--host", default=os.environ.get("RUNPLANE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("RUNPLANE_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=_migrate)

    create_user = commands.add_parser("create-user", help="create a user with a password")
    create_user.add_argument("email")
    create_user.add_argument("--password", help="read from RUNPLANE_PASSWORD or a prompt when omitted")
    create_user.add_argument("--admin", action="store_true")
    create_user.set_defaults(run=_create_user, existing_database=True)

    token = commands.add_parser("token", help="issue an access token for a user (for scripts and curl)")
    token.add_argument("email")
    token.add_argument("--abilities", help="comma separated; default: all the user may have")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="seconds (default one day)")
    token.set_defaults(run=_token, existing_database=True)

    schema = commands.add_parser("export-schema", help="write the GraphQL SDL and possibleTypes.json beside it")
    schema.add_argument("path", nargs="?", default="schema.graphql")
    schema.set_defaults(run=_export_schema)

    rotate = commands.add_parser(
        "rotate-encryption-key", help="re-encrypt stored secrets with RUNPLANE_ENCRYPTION_KEY (previous keys open them)"
    )
    rotate.set_defaults(run=_rotate_encryption_key)

    register = commands.add_parser(
        "register-operations",
        help="register the GraphQL operations a frontend ships (persisted-query manifests, .graphql files)",
    )
    register.add_argument("paths", nargs="+", type=Path, help="manifest JSON files, .graphql/.gql files, directories")
    register.add_argument("--replace", action="store_true", help="drop the operations registered before")
    register.set_defaults(run=_register_operations)

    worker = commands.add_parser("worker", help="run agent runs from the Redis job queue")
    worker.set_defaults(run=_worker)
    return parser


def _refuse_a_new_embedded_database(settings: Settings) -> None:
    """`create-user` and `token` act on the server's database. On the embedded defaults that is a file under the
    data dir, relative to the current directory: run from elsewhere, they would silently make a new, empty
    database there and create a user (or find none) that the running server never sees."""
    if settings.database_url:
        return
    database = settings.embedded_database.absolute()
    if not database.is_file():
        sys.exit(
            f"error: no runplane database at {database}. Run this command in the directory "
            "where `runplane serve` runs, or set RUNPLANE_DATA_DIR (or RUNPLANE_DATABASE_URL) to the server's; "
            "`runplane migrate` creates a new database on purpose."
        )


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from runplane.http_protocol import DeadlineConfig, DeadlineHttpToolsProtocol  # deadlines against slow clients
    from runplane.ws_protocol import DirectWebSocketProtocol  # websockets-sansio + batched fan-out writes

    os.environ.setdefault("RUNPLANE_DATA_DIR", str(settings.data_dir))
    untrusted_port = _untrusted_port(settings, args.port)  # read again by each worker's create_app()
    config = DeadlineConfig(
        "runplane.app:create_app",
        header_timeout=settings.http_header_timeout,
        body_timeout=settings.http_body_timeout,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http=DeadlineHttpToolsProtocol,
        ws=DirectWebSocketProtocol,
        ws_per_message_deflate=settings.ws_compression,
        proxy_headers=True,
        log_level=settings.log_level.lower(),
        # Run streams (SSE, subscriptions) never end by themselves: without a bound, SIGTERM waits for them
        # forever. Cut after a grace period; clients resume elsewhere with Last-Event-ID / `after`.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    # uvicorn.run's own steps, so that the Config (with the deadlines) reaches every worker process.
    server = uvicorn.Server(config)
    sockets = _listen(args.host, args.port, settings.untrusted_host or args.host, untrusted_port)
    if config.workers > 1:
        Multiprocess(config, sockets=sockets).run()
    else:
        server.run(sockets=sockets)
    if not server.started and config.workers == 1:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE


def _untrusted_port(settings: Settings, port: int) -> int:
    """Sites and previews get a listener of their own (runplane/origins.py): --port + 1 unless configured."""
    if not os.environ.get("RUNPLANE_UNTRUSTED_PORT"):
        os.environ["RUNPLANE_UNTRUSTED_PORT"] = str(port + 1)
        return port + 1
    return settings.untrusted_port


def _listen(host: str, port: int, untrusted_host: str, untrusted_port: int) -> list[socket.socket]:
    """The API's socket and, unless turned off (0), the untrusted origin's: one app serves both."""
    from runplane.origins import bind_socket

    try:
        sockets = [bind_socket(host, port)]
        if untrusted_port:
            sockets.append(bind_socket(untrusted_host, untrusted_port))
    except OSError as exc:
        sys.exit(f"runplane serve: cannot listen ({exc}); RUNPLANE_UNTRUSTED_PORT sets the second port, 0 turns it off")
    return sockets


def _migrate(settings: Settings, args: argparse.Namespace) -> None:
    from runplane.db import close_database, open_database

    async def run() -> None:
        await open_database(settings)
        await close_database()

    asyncio.run(run())
    print("migrations applied")


def _with_db(settings: Settings, operation: Callable[[RequestContext], Awaitable[T]]) -> T:
    from runplane.db import close_database, open_database
    from runplane.resolvers.context import RequestContext
    from runplane.services import Services

    async def run() -> T:
        await open_database(settings)
        try:
            return await operation(RequestContext(services=Services(settings=settings)))
        finally:
            await close_database()

    return asyncio.run(run())


def _create_user(settings: Settings, args: argparse.Namespace) -> None:
    from runplane.errors import DomainError
    from runplane.resolvers.auth import create_user

    password = args.password or os.environ.get("RUNPLANE_PASSWORD") or getpass.getpass("Password: ")
    try:
        user = _with_db(
            settings, lambda ctx: create_user(ctx, email=args.email, password=password, is_admin=args.admin)
        )
    except DomainError as exc:
        sys.exit(f"error: {exc.message}")
    print(f"created user {user.id} <{user.email}>")


def _token(settings: Settings, args: argparse.Namespace) -> None:
    from runplane.errors import DomainError
    from runplane.resolvers.auth import issue_token_for

    abilities = [a.strip() for a in args.abilities.split(",")] if args.abilities else None
    try:
        token = _with_db(
            settings, lambda ctx: issue_token_for(ctx, email=args.email, abilities=abilities, ttl_seconds=args.ttl)
        )
    except DomainError as exc:
        sys.exit(f"error: {exc.message}")
    print(token)


def _export_schema(settings: Settings, args: argparse.Namespace) -> None:
    from runplane.schema import build_schema
    from runplane.schema.export import write_exports

    for written in write_exports(build_schema(settings), Path(args.path)):
        print(f"wrote {written}")


def _rotate_encryption_key(settings: Settings, args: argparse.Namespace) -> None:
    from runplane.resolvers.encryption import rotate_encryption_key

    report = _with_db(settings, rotate_encryption_key)
    print(
        f"re-encrypted {report.reencrypted}, already current {report.current}, undecryptable {report.failed}, "
        f"sealed from plain text {report.sealed}"
    )
    if report.failed:
        sys.exit("error: some secrets open with no key of RUNPLANE_ENCRYPTION_KEY / _PREVIOUS_KEYS (see the log)")


def _register_operations(settings: Settings, args: argparse.Namespace) -> None:
    """Validated against this build's schema first: an operation that would not run is not registered."""
    import json

    from graphql import GraphQLError

    from runplane.operations_file import collect_sources, read_operations, schema_errors, write_operations
    from runplane.schema import build_schema

    try:
        found = collect_sources(args.paths)
    except (OSError, ValueError, GraphQLError) as exc:
        sys.exit(f"error: {exc}")
    if errors := schema_errors(build_schema(settings)._schema, found):
        sys.exit("error: operations that do not validate against the schema:\n  " + "\n  ".join(errors))
    path = settings.operations_file
    registered = {} if args.replace or not path.exists() else read_operations(path)
    added = len(found.keys() - registered.keys())
    write_operations(path, {**registered, **found})
    print(json.dumps({"file": str(path), "added": added, "operations": len({**registered, **found})}))


def _worker(settings: Settings, args: argparse.Namespace) -> None:
    try:
        from runplane.agents.worker import run_worker
    except ImportError:
        sys.exit("error: the run worker is not available in this build")
    run_worker(settings)


if __name__ == "__main__":
    main()
