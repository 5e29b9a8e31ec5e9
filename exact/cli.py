"""``python -m exact <command>``: run the app, prepare the database, create users, load the demo, import and
export Django fixtures; and, as a client of a running server's API, list challenges, print leaderboards and
submit (docs/client.md)."""

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
    print(
        f"Loading the demo; the paper-protocol challenge's models train here for {args.epochs} epochs each "
        "(a few minutes at the paper's 500; --epochs makes it quicker)…",
        flush=True,
    )
    report = load_demo(db, *settings.stores(), training_epochs=args.epochs)
    print(
        f"Demo: {len(report.users_created)} users, {len(report.challenges_created)} challenges, "
        f"{report.scores_created} scores created."
    )
    if report.password:
        print(f"Demo users ({', '.join(report.users_created)}) log in with the password: {report.password}")
    return 0


def scoring_rule_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The EMD normalisers and precision rules ``evaluate`` offers (imported here: the scorer is not light)."""
    from exact.metrics import EMD_NORMALISERS, PRECISION_RULES

    return tuple(EMD_NORMALISERS), tuple(PRECISION_RULES)


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
    result = metrics.score_batch(
        attributions, masks, emd_normaliser=args.emd_normaliser, precision_rule=args.precision_rule
    )
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
    from exact.trained_models import models_available
    from exact.worker import ScoringProcesses, ScoringWorker, WorkerConfig

    processes = args.processes if args.processes is not None else settings.scoring_processes
    if processes < 1:
        raise UserError("--processes must be at least 1.")
    db = open_database(settings)
    if processes == 1 and not models_available():  # one scorer: in this process, no child to supervise
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
    trainers = 1 if models_available() else 0
    pool = ScoringProcesses(config, processes, trainers=trainers)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: pool.stop())
    pool.start()
    print(f"Scoring worker running ({processes} processes, {trainers} training); Ctrl+C stops it.")
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
        str(PROJECT_ROOT / "server.py"),  # app.py with the HTTP routes (web/) beside it
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


# ---------------------------------------------------------------------------------------------------------------
# The HTTP client commands (submit, leaderboard, challenges): they talk to a running server, never to the database.

LIST_LIMIT = 50  # rows of a leaderboard or challenge list page unless --limit says otherwise


def _http_command(args: argparse.Namespace, body, *, token_required: bool) -> int:
    """Run ``body(client)`` against the server of ``--server`` / EXACT_URL with the token of EXACT_TOKEN /
    ~/.config/exact/token; a refusal or an unreachable server is printed as ``error: <detail>``."""
    from exact import client as api

    url = api.resolve_url(args.server)
    credentials = api.resolve_token()
    if credentials is not None and credentials.warning:
        print(f"warning: {credentials.warning}", file=sys.stderr)
    if credentials is None and token_required:
        raise UserError(api.missing_token_message(url))
    quiet = getattr(args, "quiet", False)
    notice = None if quiet else (lambda message: print(message, file=sys.stderr))
    try:
        with api.ExactClient(url, credentials.token if credentials else None, notice=notice) as client:
            return body(client)
    except api.ClientError as exc:
        detail = exc.detail
        if exc.status == 401 and credentials is not None:
            detail += (
                f" The token came from {credentials.source}. Create a new one on the Profile page → API tokens "
                f"({url}/profile)."
            )
        print(f"error: {detail}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted.", file=sys.stderr)
        return 130


def _command_line(*parts: object) -> str:
    import shlex

    return shlex.join(["python", "-m", "exact", *(str(p) for p in parts)])


def cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    """Submit a score, or upload attributions (checked here first with the server's own checks) and wait for
    the result."""
    import uuid
    from pathlib import Path

    from exact import client as api
    from exact.validation import clean_score

    request_key = uuid.uuid4().hex  # one per command run: a retried request never submits twice
    if args.score is not None:
        score = clean_score(args.score)

        def submit_score(client) -> int:
            result = client.submit_score(args.challenge, score, request_key=request_key)
            again = " (already stored by this request; nothing new was submitted)" if result.get("repeated") else ""
            stored = result.get("score", score)
            print(f"Score {stored:g} submitted to {args.challenge} as {api.cell(result.get('username'))}{again}.")
            if result.get("rank"):
                print(
                    f"Rank {result['rank']} of {result.get('ranked_users')} (your best: "
                    f"{api.cell(result.get('best_score'))})."
                )
            return 0

        return _http_command(args, submit_score, token_required=True)

    path = Path(args.attributions).expanduser()
    method = args.method if args.method is not None else path.stem

    def upload(client) -> int:
        api.precheck_attributions_file(path, max_bytes=settings.max_upload_bytes)  # before anything is sent
        details = client.challenge(args.challenge)
        evaluation = details.get("evaluation")
        if not evaluation:
            raise UserError(f"Challenge {args.challenge!r} has no evaluation set: submit a score instead (--score).")
        api.check_attributions_file(path, evaluation, max_bytes=settings.max_upload_bytes)
        submission = _upload_with_progress(client, args, path, method, request_key)
        submission_id = int(submission["id"])
        if submission.get("repeated"):
            print(f"This upload was already stored by this request as submission {submission_id}.", file=sys.stderr)
        if args.no_wait:
            print(f"Submission {submission_id} is {api.describe_status(submission)}.")
            print(f"Result page: {client.result_url(submission_id)}")
            return 0
        return _wait_and_print(client, args, submission_id)  # also reads a result that is already there

    return _http_command(args, upload, token_required=True)


def _upload_with_progress(client, args: argparse.Namespace, path, method: str, request_key: str):
    from tqdm import tqdm

    shown = not args.quiet and sys.stderr.isatty()
    size = path.stat().st_size
    with tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"Uploading {path.name}",
        file=sys.stderr,
        disable=not shown,
        leave=False,
    ) as bar:

        def progress(sent: int, total: int) -> None:
            bar.update(sent - bar.n)

        submission = client.upload_attributions(
            args.challenge,
            path,
            method_name=method,
            description=args.description or "",
            url=args.url or "",
            request_key=request_key,
            progress=progress,
        )
    if not args.quiet:
        print(f"Uploaded {path.name} as submission {submission['id']} ({method}).", file=sys.stderr)
    return submission


def _wait_and_print(client, args: argparse.Namespace, submission_id: int) -> int:
    from exact import client as api

    said = {"text": ""}

    def on_update(submission) -> None:
        text = api.describe_status(submission)
        if text != said["text"] and not args.quiet and submission.get("status") not in api.DONE_STATUSES:
            print(f"Waiting for submission {submission_id}: {text}", file=sys.stderr)
        said["text"] = text

    try:
        result = client.wait_for_result(submission_id, timeout=args.wait_timeout, on_update=on_update)
    except KeyboardInterrupt:
        print(
            f"\nStopped waiting; submission {submission_id} goes on on the server: {client.result_url(submission_id)}",
            file=sys.stderr,
        )
        return 130
    if result.get("status") == "failed":
        print(f"error: submission {submission_id} failed: {result.get('error') or 'no reason given'}", file=sys.stderr)
        return 1
    metric, value = result.get("primary_metric"), result.get("public_value")
    scored = f": {metric} {api.cell(value)} (public mean)" if value is not None else ""
    print(f"Submission {submission_id} ({api.cell(result.get('method_name'))}) scored{scored}.")
    headers, rows = api.summary_table(result)
    if rows:
        print(api.format_table(headers, rows, numeric=(False, False, True, True, True)))
    if result.get("rank"):
        print(f"Public leaderboard rank: {result['rank']}")
    print(f"Result page: {client.result_url(submission_id)}")
    return 0


def cmd_leaderboard(settings: Settings, args: argparse.Namespace) -> int:
    """Print one page of a challenge's ranking, or stream the whole of it as CSV."""
    from exact import client as api

    def show(client) -> int:
        if args.csv:
            out = sys.stdout.buffer
            try:
                for chunk in client.leaderboard_csv(args.challenge, board=args.board, show_all=args.all):
                    out.write(chunk)
                out.flush()
            except BrokenPipeError:  # e.g. piped into head: stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        page = client.leaderboard(
            args.challenge, board=args.board, show_all=args.all, limit=args.limit, offset=args.offset
        )
        board = page.get("board") or args.board or "public"
        kind = "every submission" if page.get("show_all", args.all) else "best per participant"
        print(f"{args.challenge}: {board} leaderboard ({kind})")
        headers, rows = api.leaderboard_table(page)
        if rows:
            print(api.format_table(headers, rows))
        next_offset = page.get("next_offset")
        options = [*(["--board", args.board] if args.board else []), *(["--all"] if args.all else [])]
        if args.limit != LIST_LIMIT:
            options += ["--limit", args.limit]
        command = _command_line("leaderboard", args.challenge, *options, "--offset", next_offset)
        total = int(page.get("total") or 0)
        print(api.page_text(offset=args.offset, shown=len(rows), total=total, next_offset=next_offset,
                            next_command=command))  # fmt: skip
        baselines = page.get("baselines") or []
        if baselines:
            print("\nBaselines:")
            print(api.format_table(
                ["method", "status", "score", "vs random"],
                [[b.get("method"), b.get("status"), b.get("score"), b.get("vs_random")] for b in baselines],
            ))  # fmt: skip
        return 0

    return _http_command(args, show, token_required=False)


def cmd_challenges(settings: Settings, args: argparse.Namespace) -> int:
    """List (and search) the challenges: id, title, participants, and whether the server scores them."""
    from exact import client as api

    def show(client) -> int:
        page = client.challenges(args.search or "", limit=args.limit, offset=args.offset)
        headers, rows = api.challenges_table(page)
        if rows:
            print(api.format_table(headers, rows))
        options = [*(["--search", args.search] if args.search else [])]
        if args.limit != LIST_LIMIT:
            options += ["--limit", args.limit]
        next_offset = page.get("next_offset")
        command = _command_line("challenges", *options, "--offset", next_offset)
        total = int(page.get("total") or 0)
        print(api.page_text(offset=args.offset, shown=len(rows), total=total, next_offset=next_offset,
                            next_command=command, what="challenges"))  # fmt: skip
        return 0

    return _http_command(args, show, token_required=False)


def _add_http_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        metavar="URL",
        help="the Exact server (default: EXACT_URL, else http://127.0.0.1:8501). The token comes from EXACT_TOKEN, "
        "else ~/.config/exact/token",
    )


def _page_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--limit", type=int, default=LIST_LIMIT, help=f"{what} per page (default {LIST_LIMIT})")
    parser.add_argument("--offset", type=int, default=0, help=f"skip this many {what} (the next page's offset)")


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
    demo.add_argument(
        "--epochs",
        type=int,
        default=500,
        help="training epochs of the paper-protocol challenge's models (the paper's 500 by default)",
    )
    demo.set_defaults(handler=cmd_demo)

    evaluate = commands.add_parser("evaluate", help="score attribution maps against masks offline (no database)")
    evaluate.add_argument("--masks", required=True, help=".npz with key 'masks' or .npy, shape (n, H, W)")
    evaluate.add_argument(
        "--attributions", required=True, help=".npy, or .npz with key 'attributions', shape (n, H, W) or (n, H*W)"
    )
    evaluate.add_argument(
        "--emd-normaliser",
        choices=sorted(scoring_rule_names()[0]),
        default="diagonal",
        help="divide the EMD by the grid diagonal (Exact's own protocol) or by sqrt(2HW) (the XAI-TRIS paper's)",
    )
    evaluate.add_argument(
        "--precision-rule",
        choices=sorted(scoring_rule_names()[1]),
        default="expected_ties",
        help="precision's top k: ties by expected value (Exact's own protocol) or the XAI-TRIS paper code's rule "
        "(the k largest among the non-zero pixels)",
    )
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    evaluate.set_defaults(handler=cmd_evaluate)

    worker = commands.add_parser("worker", help="run the background scorers on their own (any machine)")
    worker.add_argument(
        "--processes", type=int, default=None, help="scoring processes (default: EXACT_SCORING_PROCESSES, the cores)"
    )
    worker.set_defaults(handler=cmd_worker)

    submit = commands.add_parser(
        "submit",
        help="submit to a challenge on a running server: attributions (checked locally first, then uploaded and "
        "scored) or a score",
    )
    submit.add_argument("--challenge", required=True, metavar="ID")
    what = submit.add_mutually_exclusive_group(required=True)
    what.add_argument("--attributions", metavar="FILE", help=".npy, or .npz with key 'attributions'")
    what.add_argument("--score", metavar="NUMBER", help="score-only challenges: the score, e.g. 0.87")
    submit.add_argument("--method", metavar="NAME", help="method name (default: the file name without extension)")
    submit.add_argument("--description", metavar="TEXT", help="a description of the method")
    submit.add_argument("--url", metavar="URL", help="the method's paper or code (http:// or https://)")
    submit.add_argument("--no-wait", action="store_true", help="do not wait for the result")
    submit.add_argument(
        "--wait-timeout", type=float, default=900.0, metavar="SECONDS", help="wait at most this long (default 900)"
    )
    submit.add_argument("--quiet", "-q", action="store_true", help="no progress bar or waiting messages")
    _add_http_options(submit)
    submit.set_defaults(handler=cmd_submit)

    board = commands.add_parser("leaderboard", help="print a challenge's leaderboard from a running server")
    board.add_argument("challenge", metavar="ID")
    board.add_argument("--board", choices=("public", "private"), help="default: the final one once revealed")
    board.add_argument("--all", action="store_true", help="every submission, not only each participant's best")
    _page_options(board, "rows")
    board.add_argument("--csv", action="store_true", help="write the whole ranking as CSV to standard output")
    _add_http_options(board)
    board.set_defaults(handler=cmd_leaderboard)

    listing = commands.add_parser("challenges", help="list the challenges of a running server")
    listing.add_argument("--search", metavar="TEXT", help="in title, id and description")
    _page_options(listing, "challenges")
    _add_http_options(listing)
    listing.set_defaults(handler=cmd_challenges)
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
