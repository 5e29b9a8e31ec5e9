"""``python -m exact <command>``: run the app, prepare the database, create users, load the demo, import and
export Django fixtures."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import os
import signal
import sys
from collections.abc import Sequence

from db.database import Database
from db.schema import apply_schema
from db.upstream import KNOWN_VERSIONS, IncompatibleSchema
from exact import PROJECT_ROOT
from exact.config import Settings, ensure_local_secret_key, load_settings
from exact.errors import DatabaseUnavailable, QueryTooSlow, UserError

log = logging.getLogger("exact")


def open_database(settings: Settings, *, django_schema: str = "spec") -> Database:
    """The configured server, or the embedded one (started on demand) when DATABASE_URL is unset.

    ``django_schema``: the upstream version the Django tables are created as when they do not exist yet."""
    url = settings.database_url
    if not url:
        from db.embedded import start_embedded_server

        url = start_embedded_server(settings.embedded_pgdata)
    # A command needs few connections; its statements have the app's time limit (long steps lift it themselves).
    db = Database(url, pool_size=2, max_overflow=2, statement_timeout_ms=settings.statement_timeout_ms)
    apply_schema(db, django_schema=django_schema)
    return db


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise UserError("The two passwords do not match.")
    return first


def cmd_init_db(settings: Settings, args: argparse.Namespace) -> int:
    open_database(settings, django_schema=args.django_schema).dispose()
    print("Database schema is up to date.")
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    """Load a Django dumpdata fixture (e.g. upstream's db_backup.json): all or nothing, idempotent."""
    from pathlib import Path

    from exact.fixtures import import_parsed, parse_fixture, read_fixture

    path = Path(args.fixture)
    parsed = parse_fixture(read_fixture(path))  # a bad file is refused before the database is even opened
    db = open_database(settings)
    summary = import_parsed(db, parsed, media_root=settings.media_root)
    print(f"Imported {path} (one transaction):")
    print("\n".join(summary.lines()))
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the shared Django tables as a dumpdata fixture that Django's loaddata (or import) accepts."""
    from pathlib import Path

    from exact.fixtures import export_fixture, export_fixture_file

    if args.indent is not None and not 0 <= args.indent <= 8:
        raise UserError("--indent must be between 0 and 8.")
    db = open_database(settings)
    if args.output and args.output != "-":
        summary = export_fixture_file(db, Path(args.output), sessions=args.sessions, indent=args.indent)
        print(f"Wrote {args.output}.")
        print("\n".join(summary.lines()))
    else:  # standard output carries the JSON only; the summary goes to standard error
        sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr] - fixtures are UTF-8 whatever the locale
        summary = export_fixture(db, sys.stdout, sessions=args.sessions, indent=args.indent)
        sys.stdout.flush()
        print("\n".join(summary.lines()), file=sys.stderr)
    return 0


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    from exact.accounts import create_user

    password = _read_password(args)
    db = open_database(settings)
    user = create_user(
        db,
        username=args.username,
        password=password,
        email=args.email or "",
        is_staff=args.staff,
        is_superuser=args.superuser,
    )
    print(f"Created {user.role} {user.username!r}.")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from exact.demo import load_demo

    db = open_database(settings)
    report = load_demo(db, *settings.stores())
    print(
        f"Demo: {len(report.users_created)} users, {len(report.challenges_created)} challenges, "
        f"{report.scores_created} scores created."
    )
    if report.password:
        print(f"Demo users ({', '.join(report.users_created)}) log in with the password: {report.password}")
    return 0


def cmd_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    """Score attributions against masks offline, with the server's own scorer and validators."""
    import json
    from pathlib import Path

    from exact import arrays, metrics

    limit = settings.max_upload_bytes * 8  # local files: generous, but still bounded
    masks_path, attributions_path = Path(args.masks), Path(args.attributions)
    for path in (masks_path, attributions_path):
        if not path.is_file():
            raise UserError(f"No such file: {path}")
    masks = arrays.validate_masks(
        arrays.load_array_file(
            masks_path.read_bytes(),
            name=masks_path.name,
            max_bytes=limit,
            key="masks" if masks_path.suffix == ".npz" else None,
        )
    )
    attributions = arrays.validate_attributions(
        arrays.load_array_file(
            attributions_path.read_bytes(),
            name=attributions_path.name,
            max_bytes=limit,
            key=arrays.ATTRIBUTIONS_KEY if attributions_path.suffix == ".npz" else None,
        ),
        masks.shape,
    )
    result = metrics.score_batch(attributions, masks)
    if args.json:
        summary = {name: result.summary[name].to_dict() for name in result.metrics}
        print(json.dumps({"n_samples": result.n_samples, "metrics": summary}, indent=2))
        return 0
    print(f"{result.n_samples} samples of {masks.shape[1]}×{masks.shape[2]}")
    print(f"{'metric':<28}{'mean':>10}{'std':>10}{'scored':>8}{'not scorable':>14}")
    for name in result.metrics:
        s = result.summary[name]
        print(f"{metrics.METRICS[name].label:<28}{s.mean:>10.4f}{s.std:>10.4f}{s.n_scored:>8}{s.n_not_scorable:>14}")
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run the background scorers on their own: beside app servers started with EXACT_WORKER=off, or on more
    machines that reach the same database and private storage (each adds its processes to the same queue)."""
    from exact.worker import ScoringProcesses, ScoringWorker, WorkerConfig

    processes = args.processes if args.processes is not None else settings.scoring_processes
    if processes < 1:
        raise UserError("--processes must be at least 1.")
    db = open_database(settings)
    if processes == 1:  # one scorer: in this process, no child to supervise
        worker = ScoringWorker(db, *settings.stores(), time_budget=settings.scoring_seconds)
        print("Scoring worker running (1 process); Ctrl+C stops it.")
        with contextlib.suppress(KeyboardInterrupt):
            worker.run_forever()
        return 0
    config = WorkerConfig(
        database_url=db.url,
        media_root=settings.media_root,
        private_root=settings.private_root,
        max_bytes=settings.max_upload_bytes,
        time_budget=settings.scoring_seconds,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
    db.dispose()  # the processes open their own engines
    pool = ScoringProcesses(config, processes)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: pool.stop())
    pool.start()
    print(f"Scoring worker running ({processes} processes); Ctrl+C stops it.")
    with contextlib.suppress(KeyboardInterrupt):
        pool.wait()
    pool.stop()
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.secret_key:
        ensure_local_secret_key(settings.data_dir)  # created once, kept in the git-ignored data folder
    if not settings.database_url:
        print(f"DATABASE_URL is not set: using the embedded PostgreSQL server in {settings.embedded_pgdata}")
    host = settings.host or "127.0.0.1"  # a blank EXACT_HOST must not mean "every interface"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PROJECT_ROOT / "app.py"),
        "--server.port",
        str(args.port),
        # Loopback unless EXACT_HOST says otherwise: a LAN address also needs a real EXACT_SECRET_KEY.
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--server.maxUploadSize",
        str(settings.max_upload_mb),
        "--browser.gatherUsageStats",
        "false",
    ]
    everywhere = host in {"0.0.0.0", "::"}  # noqa: S104 - only compared, to print a URL that works
    shown = "127.0.0.1" if everywhere else f"[{host}]" if ":" in host else host  # IPv6 literals need brackets
    listening = " (listening on all addresses)" if everywhere else ""
    print(f"Exact is starting on http://{shown}:{args.port}{listening}")
    os.chdir(PROJECT_ROOT)
    os.execv(sys.executable, command)  # noqa: S606 - our own interpreter and arguments, no shell
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m exact", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve the app (embedded PostgreSQL when DATABASE_URL is unset)")
    run.add_argument("--port", type=int, default=8501)
    run.set_defaults(handler=cmd_run)

    init = commands.add_parser("init-db", help="apply schema.sql to the database (idempotent)")
    init.add_argument(
        "--django-schema",
        choices=KNOWN_VERSIONS,
        default="spec",
        help="create missing Django api tables as this upstream version's migrations would (default: spec, the "
        "2025-05-16 contract; 2025-07 and 2026-05 add upstream's later columns). Existing tables keep their "
        "columns whatever is chosen.",
    )
    init.set_defaults(handler=cmd_init_db)

    load = commands.add_parser(
        "import",
        help="load a Django dumpdata fixture (e.g. upstream's db_backup.json) in one transaction; running it "
        "again adds nothing",
    )
    load.add_argument("fixture", metavar="FIXTURE.json", help="a JSON list of {model, pk, fields} objects")
    load.set_defaults(handler=cmd_import)

    dump = commands.add_parser(
        "export", help="write users, groups, permissions, challenges and scores as a Django dumpdata fixture"
    )
    dump.add_argument("--output", "-o", metavar="FILE", help="write to FILE (default: standard output)")
    dump.add_argument(
        "--sessions",
        action="store_true",
        help="include django_session rows (left out by default: their keys are the Django site's login cookies)",
    )
    dump.add_argument("--indent", type=int, default=None, help="indent the JSON by N spaces (default: one line)")
    dump.set_defaults(handler=cmd_export)

    create = commands.add_parser("create-user", help="create a user; asks for the password")
    create.add_argument("username")
    create.add_argument("--email")
    create.add_argument("--staff", action="store_true", help="organiser: may create and edit challenges")
    create.add_argument("--superuser", action="store_true", help="administrator (implies --staff)")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(handler=cmd_create_user)

    demo = commands.add_parser("demo", help="fill the database with a small realistic demo")
    demo.set_defaults(handler=cmd_demo)

    evaluate = commands.add_parser("evaluate", help="score attribution maps against masks offline (no database)")
    evaluate.add_argument("--masks", required=True, help=".npz with key 'masks' or .npy, shape (n, H, W)")
    evaluate.add_argument(
        "--attributions", required=True, help=".npy, or .npz with key 'attributions', shape (n, H, W) or (n, H*W)"
    )
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    evaluate.set_defaults(handler=cmd_evaluate)

    worker = commands.add_parser("worker", help="run the background scorers on their own (any machine)")
    worker.add_argument(
        "--processes", type=int, default=None, help="scoring processes (default: EXACT_SCORING_PROCESSES, the cores)"
    )
    worker.set_defaults(handler=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return args.handler(settings, args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:
        print(f"error: the database is unavailable ({exc}). Check DATABASE_URL or unset it.", file=sys.stderr)
        return 3
    except IncompatibleSchema as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except QueryTooSlow as exc:
        print(f"error: {exc} (EXACT_STATEMENT_TIMEOUT_MS)", file=sys.stderr)
        return 3
    except ValueError as exc:  # bad settings
        print(f"error: {exc}", file=sys.stderr)
        return 2
