"""Command line: ``python -m bot <command>``. Every command has ``--help``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.app import App, build_app, setup_logging
from bot.config import Settings
from bot.services.invites import InviteError, deep_link
from bot.storage.models import PatientStatus

# The labelled evaluation sets live with the tests (a checkout, not an installed wheel).
EVAL_DATA = Path(__file__).resolve().parent.parent / "tests" / "data"

Action = Callable[[argparse.Namespace, Settings], Awaitable[int]]


def parse_local(text: str, settings: Settings) -> datetime:
    """``2026-12-01 14:30`` in the practice time zone."""
    try:
        naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    except ValueError as exc:
        raise SystemExit(f'invalid date/time {text!r}: use "YYYY-MM-DD HH:MM"') from exc
    return naive.replace(tzinfo=settings.zone)


async def _with_app(settings: Settings, work: Callable[[App], Awaitable[int]]) -> int:
    app = await build_app(settings)
    try:
        return await work(app)
    finally:
        await app.close()


async def _bot_username(settings: Settings) -> str | None:
    if settings.bot_username:
        return settings.bot_username
    if settings.bot_token is None:
        return None
    from bot.telegram.runner import make_bot

    bot = make_bot(settings)
    try:
        return (await bot.get_me()).username
    except Exception as exc:
        print(f"warning: could not ask Telegram for the bot's name ({type(exc).__name__})", file=sys.stderr)
        return None
    finally:
        await bot.session.close()


async def _print_link(settings: Settings, token: str) -> None:
    username = await _bot_username(settings)
    if username:
        print(deep_link(username, token))
    else:
        print(f"https://t.me/<BOT_USERNAME>?start={token}")
        print("note: set BOT_USERNAME (or BOT_TOKEN) in .env to get a complete link", file=sys.stderr)


# -- commands --------------------------------------------------------------------------
async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.telegram.runner import run_polling

    if settings.bot_token is None:
        print(
            "error: BOT_TOKEN is not set. Put it in .env (see .env.example and the README).", file=sys.stderr
        )
        return 2
    app = await build_app(settings)
    runner = None
    if args.with_web:
        from bot.web.server import serve

        runner = await serve(app, settings.web_host, settings.web_port)
    try:
        await run_polling(app, webhook=args.webhook)
    finally:
        if runner is not None:
            await runner.cleanup()
    return 0


async def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio as _asyncio

    from bot.web.server import serve

    app = await build_app(settings)
    runner = await serve(app, args.host or settings.web_host, args.port or settings.web_port)
    print(
        f"web app on http://{args.host or settings.web_host}:{args.port or settings.web_port} (Ctrl-C stops)"
    )
    try:
        await _asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await app.close()
    return 0


def _enrol_link(settings: Settings, token: str) -> str:
    base = settings.web_base_url or f"http://{settings.web_host}:{settings.web_port}"
    return f"{base.rstrip('/')}/enrol/{token}"


async def cmd_clinician_add(args: argparse.Namespace, settings: Settings) -> int:
    """A web account without a password: its holder sets one through the printed enrolment link."""
    from bot.web.auth import ENROL_FOR, AuthError, WebAuth

    async def work(app: App) -> int:
        if await app.repo.practices.get(args.practice) is None:
            print(f"error: no practice with id {args.practice}", file=sys.stderr)
            return 1
        try:
            account, token = await WebAuth(app.repo.web, app.clock).create_account(
                args.practice,
                args.username,
                args.name,
                role="admin" if args.admin else "poh",
                clinician_id=args.telegram_clinician,
            )
        except AuthError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        await app.repo.web.audit(
            app.clock.now(), "create_account", "cli", practice_id=args.practice, detail=f"account {account}"
        )
        hours = int(ENROL_FOR.total_seconds() // 3600)
        print(f"web account {account} ({args.username}); give its holder this link ({hours} h, once):")
        print(_enrol_link(settings, token))
        return 0

    return await _with_app(settings, work)


async def cmd_clinician_reset(args: argparse.Namespace, settings: Settings) -> int:
    """A new enrolment link; the account's password, linked app, sessions and older links stop working."""
    from bot.web.auth import ENROL_FOR, WebAuth

    async def work(app: App) -> int:
        row = await app.repo.web.account_by_username(args.username)
        if row is None:
            print(f"error: no web account {args.username!r}", file=sys.stderr)
            return 1
        token = await WebAuth(app.repo.web, app.clock).reset_account(row["id"])
        await app.repo.web.audit(
            app.clock.now(),
            "reset_account",
            "cli",
            practice_id=row["practice_id"],
            detail=f"account {row['id']}",
        )
        hours = int(ENROL_FOR.total_seconds() // 3600)
        print(f"web account {row['id']} ({args.username}) reset; its holder's new link ({hours} h, once):")
        print(_enrol_link(settings, token))
        return 0

    return await _with_app(settings, work)


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.console import demo_settings, load_answers, run_demo

    answers = load_answers(args.answers) if args.answers else None
    return await run_demo(demo_settings(settings, args.db), answers, simple=args.simple)


async def cmd_practice_add(args: argparse.Namespace, settings: Settings) -> int:
    async def work(app: App) -> int:
        practice_id = await app.repo.practices.add(args.name, app.clock.now())
        print(f"practice {practice_id}: {args.name}")
        return 0

    return await _with_app(settings, work)


async def cmd_practice_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(app: App) -> int:
        for practice in await app.repo.practices.all():
            print(f"{practice.id}\t{practice.name}")
        return 0

    return await _with_app(settings, work)


def _choice(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


async def cmd_invite_patient(args: argparse.Namespace, settings: Settings) -> int:
    consult_at = parse_local(args.consult, settings)

    async def work(app: App) -> int:
        try:
            invite = await app.invites.invite_patient(
                args.practice,
                consult_at,
                clinician_id=args.clinician,
                name=args.name,
                patient_id=args.patient,
                simple=_choice(args.simple),
                read_aloud=_choice(args.read_aloud),
            )
        except InviteError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(
            f"patient {invite.patient_id}, consult {invite.consult_id}, "
            f"link valid until {invite.expires_at.astimezone(settings.zone):%Y-%m-%d %H:%M}",
            file=sys.stderr,
        )
        await _print_link(settings, invite.token)
        return 0

    return await _with_app(settings, work)


def _progress(done: int, total: int) -> None:
    """A progress bar on stderr (stdout keeps the table of links)."""
    width = 30
    filled = width * done // total
    end = "\n" if done == total else ""
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end, file=sys.stderr, flush=True)


def _read_list(path: Path) -> str:
    """A CSV as an HIS or spreadsheet writes it: UTF-8 (with or without BOM), else Windows-1252."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


async def cmd_invite_patients(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.bulk_invites import BulkInvites, describe
    from bot.web.bulk_invites import letters
    from bot.web.server import qr_svg

    try:
        text = _read_list(Path(args.csv))
    except OSError as exc:
        print(f"error: cannot read {args.csv}: {exc.strerror}", file=sys.stderr)
        return 2

    async def work(app: App) -> int:
        if await app.repo.practices.get(args.practice) is None:
            print(f"error: no practice with id {args.practice}", file=sys.stderr)
            return 1
        bulk = BulkInvites(app.repo, app.invites, settings.zone)
        result = await bulk.run(args.practice, text, default_clinician=args.clinician, progress=_progress)
        if not result.ok:
            print("error: nobody was invited; fix these lines and run it again:", file=sys.stderr)
            for line in describe(result.problems, app.catalog.t):
                print(f"  {line}", file=sys.stderr)
            return 1
        username = await _bot_username(settings)
        made = letters(app, result, qr_svg, username)
        print("line\tpatient\tconsult\tlink")
        for item, letter in zip(result.invited, made, strict=True):
            print(f"{item.row.line}\t{item.invite.patient_id}\t{item.invite.consult_id}\t{letter.link}")
        for skipped in result.skipped:
            print(f"{skipped.row.line}\t-\t{skipped.consult_id}\t(already planned: not invited again)")
        if args.letters:
            page = app.catalog.render_page("invite_letters_file.html.j2", letters=made)
            _write(Path(args.letters), page)
        if args.texts:
            _write(Path(args.texts), "\n\n".join(f"{x.name}\n{x.sms}" for x in made) + "\n")
        print(
            f"{len(result.invited)} invited, {len(result.skipped)} already planned"
            + (f"; letters in {args.letters}" if args.letters else "")
            + (f"; SMS/e-mail texts in {args.texts}" if args.texts else ""),
            file=sys.stderr,
        )
        if not username:
            print("note: set BOT_USERNAME (or BOT_TOKEN) in .env to get complete links", file=sys.stderr)
        return 0

    return await _with_app(settings, work)


async def cmd_invite_clinician(args: argparse.Namespace, settings: Settings) -> int:
    async def work(app: App) -> int:
        try:
            invite = await app.invites.invite_clinician(args.practice, args.name)
        except InviteError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(
            f"clinician {invite.clinician_id}, link valid until "
            f"{invite.expires_at.astimezone(settings.zone):%Y-%m-%d %H:%M}",
            file=sys.stderr,
        )
        await _print_link(settings, invite.token)
        return 0

    return await _with_app(settings, work)


async def cmd_agenda(args: argparse.Namespace, settings: Settings) -> int:
    async def work(app: App) -> int:
        text = await app.agenda.text(args.consult_id, include_name=True)
        if text is None:
            print(f"error: no consult with id {args.consult_id}", file=sys.stderr)
            return 1
        print(text, end="")
        return 0

    return await _with_app(settings, work)


async def cmd_consults(args: argparse.Namespace, settings: Settings) -> int:
    async def work(app: App) -> int:
        since = parse_local(args.since, settings) if args.since else app.clock.now()
        for c in await app.repo.consults.upcoming(args.practice, since, limit=args.limit):
            print(f"{c.id}\t{c.scheduled_at.astimezone(settings.zone):%Y-%m-%d %H:%M}\t{c.status}")
        return 0

    return await _with_app(settings, work)


def _schedule(args: argparse.Namespace, settings: Settings) -> Any:
    from bot.content import Catalog
    from bot.services.schedule_input import ScheduleError, read_schedule

    catalog = Catalog(settings.content_dir)
    now = datetime.now(settings.zone)
    try:
        return read_schedule(
            args.schedule,
            args.at,
            today=now.date(),
            now=now.time(),
            weekday_names=catalog.raw("weekdays"),
            days=(args.days or "").split(","),
            start=args.start,
            until=args.until,
            every=str(args.every),
        )
    except ScheduleError as exc:
        raise SystemExit(catalog.t(exc.key)) from None


async def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import date

    from bot.services.measurements import parse as parse_measurement
    from bot.services.plans import PlanError

    async def work(app: App) -> int:
        try:
            if args.plan_command == "goal":
                follow = date.fromisoformat(args.follow_up) if args.follow_up else None
                print(f"goal {await app.plans.add_goal(args.patient, args.text, 'cli', follow)}")
            elif args.plan_command == "action":
                limits = {
                    side: parse_measurement(args.measure, value)
                    for side, value in (("above", args.above), ("below", args.below))
                    if value and args.measure
                }
                if (args.above or args.below) and not args.measure:
                    raise PlanError("--above/--below need --measure")
                action = await app.plans.add_action(
                    args.goal,
                    args.what,
                    _schedule(args, settings),
                    "cli",
                    args.measure,
                    limits=limits or None,
                )
                print(f"action {action}")
            elif args.plan_command == "end-action":
                await app.plans.end_action(args.item_id)
                print(f"action {args.item_id} ended")
            elif args.plan_command == "end-goal":
                await app.plans.end_goal(args.item_id)
                print(f"goal {args.item_id} ended")
            elif args.plan_command == "settings":
                print(await _patient_settings(app, args))
            else:
                for goal in await app.plans.goals(args.patient, with_history=args.history):
                    mark = " (ended)" if goal.ended else ""
                    until = f", follow-up {goal.follow_up_on}" if goal.follow_up_on else ""
                    print(f"goal {goal.id}{mark}: {goal.text}{until}")
                    if goal.teachback:
                        print(f'  in their own words: "{goal.teachback}"')
                    for a in goal.actions:
                        due = (
                            a.next_due_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M")
                            if a.next_due_at
                            else "-"
                        )
                        end = " (ended)" if a.ended else ""
                        when = f"{a.schedule.kind} {a.schedule.at:%H:%M}"
                        print(f"  action {a.id}{end}: {a.what} [{when}] next: {due}")
        except (PlanError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0

    return await _with_app(settings, work)


async def _patient_settings(app: App, args: argparse.Namespace) -> str:
    from datetime import time

    from bot.services.plans import PlanError

    patient = await app.repo.patients.get(args.patient)
    if patient is None or patient.status == PatientStatus.ERASED:
        raise PlanError(f"no patient with id {args.patient}")
    discreet = patient.discreet if args.discreet is None else args.discreet == "on"
    start, end = patient.quiet_start, patient.quiet_end
    if args.quiet == "default":
        start = end = None
    elif args.quiet:
        first, _, last = args.quiet.partition("-")
        start, end = (time.fromisoformat(x.strip()).strftime("%H:%M") for x in (first, last))
    await app.repo.patients.set_settings(patient.id, discreet=discreet, quiet_start=start, quiet_end=end)
    quiet = f"{start}-{end}" if start and end else f"default ({app.settings.quiet_hours})"
    return f"patient {patient.id}: discreet {'on' if discreet else 'off'}, quiet hours {quiet}"


async def cmd_nlp_analyze(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from bot.nlp.analyzer import Analyzer

    analyzer = Analyzer(settings.content_dir)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(analyzer.analyze(line.rstrip("\n")).to_json(), ensure_ascii=False), flush=True)
    return 0


async def cmd_nlp_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from bot.content import Catalog
    from bot.nlp.analyzer import Analyzer
    from bot.nlp.evaluate import (
        HELD_OUT,
        PH_TARGET,
        evaluate,
        evaluate_ph,
        evaluate_safety,
        format_ph,
        format_report,
        format_safety,
        load,
    )
    from bot.nlp.suspicion import ordinary

    analyzer = Analyzer(settings.content_dir)
    show = not args.quiet
    safety = {
        "dev": evaluate_safety(analyzer, load(args.safety_dev)),
        HELD_OUT: evaluate_safety(analyzer, load(args.safety_heldout)),
    }
    print("== Safety net (held-out: written before tuning, frozen) ==")
    print(format_safety(safety, show_misses=show))
    everyday = {
        "dev": evaluate_safety(analyzer, ordinary(load(args.ph_dev))),
        HELD_OUT: evaluate_safety(analyzer, ordinary(load(args.ph_heldout))),
    }
    print("everyday statements (the Positive Health sets), flagged / routed:")
    for name, r in everyday.items():
        print(f"  {name}: {r.benign_flagged} / {r.benign_routed}")
    ph = {
        "dev": evaluate_ph(analyzer, load(args.ph_dev)),
        HELD_OUT: evaluate_ph(analyzer, load(args.ph_heldout)),
    }
    print("\n== Positive Health statements ==")
    print(format_ph(ph, show_misses=show))
    report = evaluate(analyzer, load(args.file), [d.id for d in Catalog(settings.content_dir).dimensions])
    print(f"\n== Domains, themes and context ({args.file}) ==")
    print(format_report(report, show_misses=show))
    passed = report.passed() and safety[HELD_OUT].passed() and ph[HELD_OUT].tagged.value >= PH_TARGET
    return 0 if passed else 1


async def cmd_nlp_train(args: argparse.Namespace, settings: Settings) -> int:
    """Only dev sets: the held-out sets must stay unseen by everything that learns or is tuned."""
    from bot.nlp.evaluate import expected_kinds, load
    from bot.nlp.suspicion import MODEL_FILE, fingerprint, ordinary, train

    sources = [args.safety_dev, *args.ordinary]
    if any("heldout" in p.name for p in sources):
        print("the held-out sets are never used to train", file=sys.stderr)
        return 2
    items = load(args.safety_dev) + [i for p in args.ordinary for i in ordinary(load(p))]
    model = train(items, expected_kinds, fingerprint(sources))
    target = settings.content_dir / "lexicon" / MODEL_FILE
    model.save(target)
    print(f"{target}: {len(model.weights)} features, threshold {model.threshold:.2f}, {model.stats}")
    return 0


async def cmd_lint_content(args: argparse.Namespace, settings: Settings) -> int:
    from bot.lint import main as lint_main

    return lint_main(settings.content_dir)


async def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bench import run_bench

    print(
        await asyncio.to_thread(run_bench, args.name, settings, args.repeat, args.patients, args.latency_ms)
    )
    return 0


def _passphrase(
    args: argparse.Namespace, *, ask: bool, confirm: bool = False, why: str = "a passphrase is needed"
) -> str | None:
    """From the environment variable ``--passphrase-env`` names (never from .env: keep the
    passphrase apart from what is backed up), else typed at the terminal when ``ask``."""
    import getpass
    import os

    from bot.storage.backup import BackupError

    if args.passphrase_env:
        value = os.environ.get(args.passphrase_env)
        if not value:
            raise BackupError(f"the environment variable {args.passphrase_env} is not set or empty")
        return value
    if not ask:
        return None
    if not sys.stdin.isatty():
        raise BackupError(f"{why} and there is no terminal to ask for it: give --passphrase-env NAME")
    value = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Passphrase again: ") != value:
        raise BackupError("the two passphrases differ")
    return value


async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from bot.storage.backup import BackupError, backup

    try:
        passphrase = _passphrase(args, ask=args.encrypt, confirm=True)
        info = await asyncio.to_thread(
            backup, settings.database_path, args.file, passphrase, overwrite=args.overwrite
        )
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    how = "encrypted" if info.encrypted else "not encrypted"
    print(f"backup written: {info.path} ({how}, {info.size / 1024:,.0f} KiB, schema {info.schema})")
    return 0


async def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    import functools

    from bot.storage.backup import BackupError, restore

    try:
        ask = functools.partial(_passphrase, args, ask=True, why="this backup is encrypted")
        info = await asyncio.to_thread(restore, args.file, settings.database_path, ask)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.file} into {info.database} (schema {info.schema})")
    if info.pending:
        print(f"the bot applies migrations {', '.join(map(str, info.pending))} at its next start")
    if info.kept_aside is not None:
        print(f"the old database is kept as {info.kept_aside}")
    return 0


async def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    """The same checks as GET /healthz, on the database file, without migrating it."""
    import json

    from bot.app import build_health
    from bot.clock import SystemClock
    from bot.storage.db import Database
    from bot.storage.store import SqliteStore

    db: Database | None = None
    missing = ""
    path = settings.database_path
    if not path.exists():
        missing = f"no database at {path}"
    else:
        try:
            db = await asyncio.wait_for(Database.open(path, migrate=False), settings.health_timeout_seconds)
        except Exception as exc:
            missing = f"could not open {path} ({type(exc).__name__})"
    try:
        store = SqliteStore(db).health if db is not None else None
        report = await build_health(settings, store, SystemClock(), missing=missing).report()
    finally:
        if db is not None:
            await db.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0 if report.healthy else 1


# -- parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Voorgesprek: consult preparation over Telegram for Dutch primary care. "
        "Settings come from the environment and .env (see .env.example).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="start the Telegram bot (long polling; needs BOT_TOKEN)")
    p.add_argument(
        "--with-web", action="store_true", help="also serve the clinician web app (WEB_HOST:WEB_PORT)"
    )
    p.add_argument(
        "--webhook",
        action="store_true",
        help="receive updates by webhook instead of long polling (WEBHOOK_URL, WEBHOOK_SECRET, WEBHOOK_HOST:"
        "WEBHOOK_PORT, WEBHOOK_PATH)",
    )
    p.set_defaults(action=cmd_run)

    p = sub.add_parser("web", help="serve the clinician web app (default 127.0.0.1:8080)")
    p.add_argument("--host", help="default WEB_HOST")
    p.add_argument("--port", type=int, help="default WEB_PORT")
    p.set_defaults(action=cmd_web)

    clinician = sub.add_parser("clinician", help="clinician accounts for the web app")
    csub = clinician.add_subparsers(dest="clinician_command", required=True, metavar="ACTION")
    p = csub.add_parser(
        "add", help="create a web account; prints a one-time link where its holder sets a password and an app"
    )
    p.add_argument("--practice", type=int, required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--name", required=True, help='shown in the audit log, e.g. "Anna de Wit (POH)"')
    p.add_argument("--admin", action="store_true", help="may see the audit log")
    p.add_argument("--telegram-clinician", type=int, help="the same person's clinician id in Telegram")
    p.set_defaults(action=cmd_clinician_add)
    p = csub.add_parser(
        "reset", help="void a web account's password, app and sessions; prints a new one-time link"
    )
    p.add_argument("--username", required=True)
    p.set_defaults(action=cmd_clinician_reset)

    p = sub.add_parser("demo", help="run the patient intake in this terminal (no token needed)")
    p.add_argument("--answers", type=Path, help="YAML file with answers; runs without typing")
    p.add_argument("--db", type=Path, help="SQLite file to use (default: a new temporary file)")
    p.add_argument("--simple", action="store_true", help="simple mode: faces instead of numbers")
    p.set_defaults(action=cmd_demo)

    practice = sub.add_parser("practice", help="manage practices")
    psub = practice.add_subparsers(dest="practice_command", required=True, metavar="ACTION")
    p = psub.add_parser("add", help="create a practice")
    p.add_argument("name", help='e.g. "Huisartsenpraktijk De Linde"')
    p.set_defaults(action=cmd_practice_add)
    p = psub.add_parser("list", help="list practices")
    p.set_defaults(action=cmd_practice_list)

    invite = sub.add_parser("invite", help="create a one-time Telegram invite link")
    isub = invite.add_subparsers(dest="invite_command", required=True, metavar="WHO")
    p = isub.add_parser("patient", help="invite a patient to prepare a consult")
    p.add_argument("--practice", type=int, required=True, help="practice id")
    p.add_argument("--consult", required=True, help='consult date and time, "YYYY-MM-DD HH:MM" (local)')
    p.add_argument("--clinician", type=int, help="clinician id who gets the agenda (default: all)")
    p.add_argument("--name", help="display name for the POH only; never sent through Telegram")
    p.add_argument("--patient", type=int, help="existing patient id (a follow-up consult)")
    p.add_argument(
        "--simple", choices=["yes", "no", "ask"], default="ask", help="simple mode: faces, short sentences"
    )
    p.add_argument(
        "--read-aloud", choices=["yes", "no", "ask"], default="ask", help="every message also as a voice note"
    )
    p.set_defaults(action=cmd_invite_patient)
    p = isub.add_parser(
        "patients",
        help="invite a list of patients from a CSV (the HIS export): naam, datum, tijd",
        description=(
            "Invite every patient of a CSV list (comma or semicolon separated, a header row with at "
            "least naam, datum (YYYY-MM-DD or DD-MM-YYYY) and tijd (HH:MM); optional behandelaar "
            "(clinician id), eenvoudig and voorlezen (ja/nee)). The whole list is checked first: one "
            "bad row invites nobody. Rows already planned (same name and moment) are skipped, so "
            "running the same list twice invites nobody twice. Prints one link per patient."
        ),
    )
    p.add_argument("--csv", required=True, help="the list, a CSV file")
    p.add_argument("--practice", type=int, required=True, help="practice id")
    p.add_argument("--clinician", type=int, help="clinician id for rows without behandelaar (default: all)")
    p.add_argument("--letters", help="write a printable letter per patient (QR code, link) to this HTML file")
    p.add_argument("--texts", help="write the SMS / e-mail text per patient to this text file")
    p.set_defaults(action=cmd_invite_patients)
    p = isub.add_parser("clinician", help="invite a POH who then receives agendas in Telegram")
    p.add_argument("--practice", type=int, required=True, help="practice id")
    p.add_argument("--name", required=True, help='e.g. "Anna (POH)"')
    p.set_defaults(action=cmd_invite_clinician)

    p = sub.add_parser("agenda", help="print the agenda of a consult")
    p.add_argument("consult_id", type=int)
    p.set_defaults(action=cmd_agenda)

    p = sub.add_parser("consults", help="list consults of a practice from now (or --since)")
    p.add_argument("--practice", type=int, required=True, help="practice id")
    p.add_argument("--since", help='"YYYY-MM-DD HH:MM" (local)')
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(action=cmd_consults)

    plan = sub.add_parser("plan", help="a patient's care plan: goals and actions (history is kept)")
    plsub = plan.add_subparsers(dest="plan_command", required=True, metavar="ACTION")
    p = plsub.add_parser("show", help="the plan of a patient")
    p.add_argument("--patient", type=int, required=True)
    p.add_argument("--history", action="store_true", help="also ended and replaced goals and actions")
    p.set_defaults(action=cmd_plan)
    p = plsub.add_parser("goal", help="add a goal, in the patient's words")
    p.add_argument("--patient", type=int, required=True)
    p.add_argument("--text", required=True, help='e.g. "Weer fietsen met mijn kleinzoon"')
    p.add_argument("--follow-up", help="follow-up date YYYY-MM-DD")
    p.set_defaults(action=cmd_plan)
    p = plsub.add_parser("action", help="add an action with its schedule to a goal")
    p.add_argument("--goal", type=int, required=True)
    p.add_argument("--what", required=True, help='e.g. "15 minuten wandelen"')
    p.add_argument("--schedule", choices=["once", "daily", "weekdays", "every_n_days"], default="daily")
    p.add_argument("--at", default="09:00", help="local time HH:MM")
    p.add_argument("--days", help="for weekdays: e.g. ma,wo,vr")
    p.add_argument("--every", type=int, default=1, help="for every_n_days: N")
    p.add_argument("--start", help="first day YYYY-MM-DD (default today)")
    p.add_argument("--until", help="last day YYYY-MM-DD (default open-ended)")
    p.add_argument("--measure", choices=["blood_pressure", "weight", "steps", "pain", "glucose"])
    p.add_argument("--above", help="signal the POH above this value for this patient, e.g. 160/100")
    p.add_argument("--below", help="signal the POH below this value for this patient, e.g. 90/50")
    p.set_defaults(action=cmd_plan)
    p = plsub.add_parser("settings", help="reminder settings of a patient: discreet mode, quiet hours")
    p.add_argument("--patient", type=int, required=True)
    p.add_argument(
        "--discreet", choices=["on", "off"], help='on: a reminder only says "time for your action"'
    )
    p.add_argument("--quiet", help="local quiet hours HH:MM-HH:MM, or 'default' (QUIET_HOURS)")
    p.set_defaults(action=cmd_plan)
    for name, key in (("end-action", "action"), ("end-goal", "goal")):
        p = plsub.add_parser(name, help=f"end a {key} (kept in the history)")
        p.add_argument(f"--{key}", type=int, required=True, dest="item_id", metavar="ID")
        p.set_defaults(action=cmd_plan)

    nlp = sub.add_parser("nlp", help="Dutch text analysis tools for content writers")
    nsub = nlp.add_subparsers(dest="nlp_command", required=True, metavar="ACTION")
    p = nsub.add_parser("analyze", help="read Dutch lines on stdin, write one JSON object per line")
    p.set_defaults(action=cmd_nlp_analyze)
    p = nsub.add_parser(
        "evaluate",
        help="safety net per kind and tier, Positive Health tagging and domains, dev and held-out side by "
        "side; exit 1 when a held-out figure is below target",
    )
    p.add_argument(
        "--file", type=Path, default=EVAL_DATA / "nlp_eval.yaml", help="domains/themes/context set"
    )
    p.add_argument("--safety-dev", type=Path, default=EVAL_DATA / "safety_dev.yaml", help="safety tuning set")
    p.add_argument(
        "--safety-heldout", type=Path, default=EVAL_DATA / "safety_heldout.yaml", help="frozen safety set"
    )
    p.add_argument(
        "--ph-dev", type=Path, default=EVAL_DATA / "ph_dev.yaml", help="Positive Health tuning set"
    )
    p.add_argument("--ph-heldout", type=Path, default=EVAL_DATA / "ph_heldout.yaml", help="frozen PH set")
    p.add_argument("--quiet", action="store_true", help="leave out the list of misses")
    p.set_defaults(action=cmd_nlp_evaluate)
    p = nsub.add_parser(
        "train",
        help="fit the safety net's second layer (it only asks) on the dev set; writes "
        "content/nl/lexicon/safety_model.json",
    )
    p.add_argument("--safety-dev", type=Path, default=EVAL_DATA / "safety_dev.yaml", help="safety tuning set")
    p.add_argument(
        "--ordinary",
        type=Path,
        nargs="*",
        default=[EVAL_DATA / "ph_dev.yaml", EVAL_DATA / "nlp_eval.yaml"],
        help="dev sets of everyday statements, learned as benign",
    )
    p.set_defaults(action=cmd_nlp_train)

    p = sub.add_parser(
        "lint-content", help="check every patient-facing Dutch text against the B1 rules; exit 1 on problems"
    )
    p.set_defaults(action=cmd_lint_content)

    p = sub.add_parser("bench", help="benchmarks that print figures")
    p.add_argument(
        "name",
        choices=["nlp", "lemmas", "reminders", "due", "schedules", "voice", "load", "flood"],
        help="nlp: analysis + agenda vs bare tokenisation; lemmas: inflection coverage; "
        "reminders: a burst of due messages through the rate-limited sender over HTTP; "
        "due: finding due actions with 3,000 vs 300,000 stored; "
        "schedules: scheduler memory with 100,000 active schedules vs 1,000; "
        "voice: the cost of reading a message aloud, synthesised and cached; "
        "load: many patients answering at once vs a bare aiogram bot (--patients, --latency-ms); "
        "flood: patients answering while an uninvited user sends 100 messages (Telegram's limits on)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="nlp, due: runs to take the median of (30); load: rounds of both bots, interleaved (3)",
    )
    p.add_argument(
        "--patients",
        type=int,
        default=2000,
        help="reminders: how many are due at once (default 2000); schedules: active schedules (100000); "
        "load: patients answering at once (100); flood: patients answering (10)",
    )
    p.add_argument("--latency-ms", type=float, default=60.0, help="load: time each Bot API call takes")
    p.set_defaults(action=cmd_bench)

    p = sub.add_parser(
        "backup",
        help="a consistent copy of the database, also while the bot runs (optionally encrypted)",
    )
    p.add_argument("file", type=Path, help="where to write the backup")
    p.add_argument(
        "--passphrase-env", metavar="NAME", help="encrypt with the passphrase in environment variable NAME"
    )
    p.add_argument("--encrypt", action="store_true", help="encrypt; ask for the passphrase at the terminal")
    p.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    p.set_defaults(action=cmd_backup)

    p = sub.add_parser(
        "restore",
        help="replace the database by a checked backup; refuses while the bot or web app runs, "
        "keeps the old file aside",
    )
    p.add_argument("file", type=Path, help="a file made by `backup`")
    p.add_argument(
        "--passphrase-env", metavar="NAME", help="an encrypted backup's passphrase is in variable NAME"
    )
    p.set_defaults(action=cmd_restore)

    p = sub.add_parser(
        "health",
        help="database, migrations, scheduler, outbox and Telegram; exit 0 healthy, 1 unhealthy",
    )
    p.add_argument("--json", action="store_true", help="the report as JSON (as GET /healthz)")
    p.set_defaults(action=cmd_health)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    setup_logging(settings.log_level if args.command in ("run", "web") else "WARNING")
    try:
        return asyncio.run(args.action(args, settings))
    except KeyboardInterrupt:
        return 130
