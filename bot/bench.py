"""``python -m bot bench ...``: benchmarks that print figures (never timed asserts in tests)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import spacy
import yaml

from bot.config import Settings
from bot.content import Catalog
from bot.nlp.analyzer import Analyzer
from bot.services.agenda import AgendaService
from bot.storage.models import Consult, ConsultStatus


def _median_seconds(work: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_nlp(settings: Settings, repeat: int = 30) -> str:
    """A full intake through analysis + agenda rendering vs bare blank('nl') tokenisation."""
    catalog = Catalog(settings.content_dir)
    data = yaml.safe_load(
        (settings.content_dir / "examples" / "bench_intake.yaml").read_text(encoding="utf-8")
    )
    answers: dict[str, Any] = data["answers"]
    texts = [v for v in answers.values() if isinstance(v, str)]
    words = sum(len(t.split()) for t in texts)

    start = time.perf_counter()
    analyzer = Analyzer(settings.content_dir)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    bare = spacy.blank("nl")
    bare_startup = time.perf_counter() - start

    # Only building and rendering is measured: no database, so no repository and no reminders.
    agenda = AgendaService(
        None,  # type: ignore[arg-type]
        catalog,
        settings.zone,
        settings.low_score_threshold,
        lambda: analyzer,
    )
    consult = Consult(1, 1, 1, None, datetime(2026, 12, 1, 13, 30, tzinfo=UTC), ConsultStatus.READY, None)

    def full() -> None:
        agenda.render(agenda.build(consult, answers, None))

    def tokenise() -> None:
        for text in texts:
            bare(text)

    first = _median_seconds(full, 1)  # cold: lemma cache empty
    # Measured side by side, interleaved, so machine noise hits both alike.
    ours, base = [], []
    for _ in range(repeat):
        ours.append(_median_seconds(full, 1))
        base.append(_median_seconds(tokenise, 1))
    ours_m, base_m = statistics.median(ours), statistics.median(base)
    ratio = ours_m / base_m
    lines = [
        f"intake: {len(texts)} free-text answers, {words} words, {len(answers)} answers in all; "
        f"{repeat} runs",
        f"start-up: analyzer {startup * 1000:.0f} ms (spaCy blank nl + lexicons), bare blank('nl') "
        f"{bare_startup * 1000:.0f} ms",
        f"analysis + agenda rendering: {ours_m * 1000:.2f} ms median (first, cold run {first * 1000:.2f} ms)",
        f"bare blank('nl') tokenisation: {base_m * 1000:.2f} ms median",
        f"ratio: {ratio:.1f}x (target <= 20x)",
    ]
    return "\n".join(lines)


def bench_lemmas(gold_file: Path) -> str:
    """How much Dutch inflection each lemma source covers, on a gold list of word -> lemma."""
    from bot.nlp.analyzer import lemma

    pairs = yaml.safe_load(gold_file.read_text(encoding="utf-8"))["pairs"]
    blank = spacy.blank("nl")
    spacy_hits = sum(blank(w)[0].lemma_.lower() == g for w, g in pairs.items())
    identity = sum(w == g for w, g in pairs.items())
    ours = sum(lemma(w) == g for w, g in pairs.items())
    n = len(pairs)
    return "\n".join(
        [
            f"{n} inflected forms with their lemma ({gold_file})",
            f"spaCy blank('nl') lemma_ (no lookup tables installed): {spacy_hits}/{n} = {spacy_hits / n:.2f}",
            f"the word itself, lower-cased: {identity}/{n} = {identity / n:.2f}",
            f"simplemma (what bot/nlp uses): {ours}/{n} = {ours / n:.2f}",
        ]
    )


async def bench_reminders(settings: Settings, patients: int) -> str:
    """``patients`` messages due in the same minute, sent through the outbox over real HTTP to the
    fake Bot API, which answers 429 above ~30 msg/s or ~1 msg/s per chat, like Telegram."""
    import tempfile

    from aiogram import Bot
    from aiogram.client.telegram import TelegramAPIServer

    from bot.app import build_app
    from bot.flows.model import OutMessage
    from bot.storage.models import OutboxItem
    from bot.telegram.channel import TelegramChannel
    from bot.telegram.session import Session
    from bot.testing.fake_telegram import FakeBotAPIServer, FakeTelegram

    fake = FakeTelegram(limits=True, per_second=settings.send_rate_per_second)
    server = FakeBotAPIServer(fake)
    await server.start()
    folder = Path(tempfile.mkdtemp(prefix="voorgesprek-bench-"))
    app = await build_app(settings.model_copy(update={"database_path": folder / "bench.sqlite3"}))
    bot = Bot(fake.token, session=Session(api=TelegramAPIServer.from_base(server.base_url)))
    try:
        outbox = app.attach_channel(TelegramChannel(bot))

        async def render(item: OutboxItem) -> list[OutMessage]:
            return [OutMessage(f"{app.catalog.t('reminder.discreet_action')} ({item.payload['n']})")]

        outbox.register("bench", render)
        now = app.clock.now()
        async with app.repo.transaction():
            for n in range(patients):
                await app.repo.outbox.enqueue("bench", 10_000_000 + n, {"n": n}, now, now)
        start = time.perf_counter()
        sent = 0
        while sent < patients and time.perf_counter() - start < patients / 5 + 60:
            sent += await outbox.flush(limit=patients)
            if sent < patients:
                await asyncio.sleep(0.5)  # postponed rows (after a 429) come due on the system clock
        elapsed = time.perf_counter() - start
        per_chat: dict[int, int] = {}
        for message in fake.sent:
            per_chat[message.chat_id] = per_chat.get(message.chat_id, 0) + 1
        delivered = len(per_chat)
        duplicates = sum(c - 1 for c in per_chat.values())
        rate = len(fake.sent) / elapsed
        target = settings.send_rate_per_second
        return "\n".join(
            [
                f"{patients} reminders due in the same minute, through the outbox over HTTP "
                "to the fake Bot API",
                f"time: {elapsed:.1f} s; achieved {rate:.1f} msg/s = {rate / target:.2f} "
                f"of {target:.0f} msg/s (target >= 0.9)",
                f"lost: {patients - delivered}; duplicates: {duplicates}; "
                f"429 answers received: {fake.too_many}",
            ]
        )
    finally:
        await bot.session.close()
        await app.close()
        await server.stop()


async def bench_due(settings: Settings, repeat: int) -> str:
    """Finding due actions with 3,000 vs 300,000 stored: an index range scan should barely notice."""
    import json
    import random
    import tempfile
    from datetime import timedelta

    from bot.clock import iso
    from bot.services.plans import PlanService
    from bot.storage.db import Database
    from bot.storage.store import SqliteStore

    folder = Path(tempfile.mkdtemp(prefix="voorgesprek-bench-"))
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    schedule = json.dumps({"kind": "daily", "at": "09:00", "start": "2026-11-23"})
    results: dict[int, float] = {}
    plans_used = ""
    for size in (3_000, 300_000):
        db = await Database.open(folder / f"due-{size}.sqlite3")
        rng = random.Random(size)
        async with db.transaction():
            await db.execute("INSERT INTO practices (name, created_at) VALUES ('P', ?)", (iso(now),))
            await db.execute("INSERT INTO patients (practice_id, created_at) VALUES (1, ?)", (iso(now),))
            await db.execute("INSERT INTO plans (patient_id, created_at) VALUES (1, ?)", (iso(now),))
            await db.execute(
                "INSERT INTO goals (plan_id, text, author, created_at) VALUES (1, 'g', 'cli', ?)", (iso(now),)
            )
            rows = [
                (
                    1,
                    "a",
                    schedule,
                    "cli",
                    iso(now),
                    iso(now + timedelta(minutes=rng.randrange(365 * 24 * 60))),
                )
                for _ in range(size)
            ]
            await db.executemany(
                "INSERT INTO actions (goal_id, what, schedule_json, author, created_at, next_due_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        service = PlanService(SqliteStore(db), None, settings.zone)  # type: ignore[arg-type]
        until = now + timedelta(minutes=1)
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            await service.due_actions(until, limit=100)
            samples.append(time.perf_counter() - start)
        results[size] = statistics.median(samples)
        plan = await db.fetchall(
            "EXPLAIN QUERY PLAN SELECT id FROM actions WHERE ended_at IS NULL AND next_due_at IS NOT NULL "
            "AND next_due_at <= ? ORDER BY next_due_at LIMIT 100",
            (iso(until),),
        )
        plans_used = " / ".join(str(r["detail"]) for r in plan)
        await db.close()
    ratio = results[300_000] / results[3_000]
    return "\n".join(
        [
            f"due actions in the next minute, {repeat} runs each",
            f"3,000 actions: {results[3_000] * 1e6:.0f} µs median; "
            f"300,000 actions: {results[300_000] * 1e6:.0f} µs median",
            f"ratio: {ratio:.2f} (target <= 2); query plan: {plans_used}",
        ]
    )


def _rss_mib() -> float:
    """Resident memory of this process (Linux /proc; 0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def bench_schedules(settings: Settings, active: int, due: int = 500) -> str:
    """Memory of the running scheduler with many active schedules vs few, side by side.

    Schedules live in SQLite; APScheduler holds one wake-up job. Each run stores ``n`` patients
    with one active daily action, ``due`` of them due now, and measures the Python heap used by one
    scheduler tick (materialising the due reminders) with tracemalloc, plus the process RSS.
    """
    import gc
    import json
    import tempfile
    import tracemalloc
    from datetime import timedelta

    from bot.app import build_app
    from bot.clock import FrozenClock, iso
    from scheduler.wakeup import start_wakeups

    folder = Path(tempfile.mkdtemp(prefix="voorgesprek-bench-"))
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    schedule = json.dumps({"kind": "daily", "at": "10:00", "start": "2026-11-23"})
    lines = [f"scheduler memory: {due} reminders due in one tick; schedules live in SQLite"]
    peaks: dict[int, float] = {}
    for size in (max(due, active // 100), active):
        app = await build_app(
            settings.model_copy(update={"database_path": folder / f"s-{size}.sqlite3"}), FrozenClock(now)
        )
        stamp = iso(now)
        async with app.db.transaction():
            await app.db.execute("INSERT INTO practices (name, created_at) VALUES ('P', ?)", (stamp,))
            await app.db.executemany(
                "INSERT INTO patients (id, practice_id, telegram_user_id, telegram_chat_id, status, "
                "created_at) VALUES (?, 1, ?, ?, 'active', ?)",
                [(i, 10_000 + i, 10_000 + i, stamp) for i in range(1, size + 1)],
            )
            await app.db.executemany(
                "INSERT INTO plans (id, patient_id, created_at) VALUES (?, ?, ?)",
                [(i, i, stamp) for i in range(1, size + 1)],
            )
            await app.db.executemany(
                "INSERT INTO goals (id, plan_id, text, author, created_at) VALUES (?, ?, 'g', 'cli', ?)",
                [(i, i, stamp) for i in range(1, size + 1)],
            )
            await app.db.executemany(
                "INSERT INTO actions (goal_id, what, schedule_json, author, created_at, next_due_at) "
                "VALUES (?, 'a', ?, 'cli', ?, ?)",
                [
                    (i, schedule, stamp, iso(now if i <= due else now + timedelta(minutes=1 + i % 1400)))
                    for i in range(1, size + 1)
                ],
            )
        wakeups = start_wakeups(app.tick, 3600)
        jobs = len(wakeups.get_jobs())
        gc.collect()
        tracemalloc.start()
        start = time.perf_counter()
        made = await app.reminders.materialise()
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        wakeups.shutdown(wait=False)
        peaks[size] = peak / 1024
        lines.append(
            f"{size:>7,} active schedules: {jobs} APScheduler job; tick made {made} reminders in "
            f"{seconds * 1000:.0f} ms; heap peak of the tick {peak / 1024:,.0f} KiB; "
            f"process RSS {_rss_mib():.0f} MiB"
        )
        await app.close()
    small, large = sorted(peaks)
    lines.append(
        f"heap ratio {large:,} vs {small:,} schedules: {peaks[large] / peaks[small]:.2f} (flat = ~1)"
    )
    return "\n".join(lines)


async def bench_voice(settings: Settings) -> str:
    """The cost of reading aloud: synthesis per message (espeak-ng + opusenc) and a cache hit."""
    import tempfile

    from bot.app import voice_cache
    from bot.flows.engine import FlowContext, FlowEngine
    from bot.services.readaloud import ReadAloud

    folder = Path(tempfile.mkdtemp(prefix="voorgesprek-voice-"))
    cache = voice_cache(settings.model_copy(update={"voice_cache_dir": folder}))
    if cache is None:
        return "read aloud is off (TTS_BACKEND=off, or espeak-ng / opusenc not installed)"
    catalog = Catalog(settings.content_dir)
    engine = FlowEngine(catalog)
    reader = ReadAloud(None, catalog, cache)  # type: ignore[arg-type]
    ctx = FlowContext("Huisartsenpraktijk De Linde", "dinsdag 1 december om 14:30", False, False)
    texts = []
    for step in engine.steps:
        if step.type in ("end",):
            continue
        state = engine.start(ctx).state
        state.step = step.key
        texts += [reader.spoken(m) for m in engine.ask(state, ctx)]
    cold, warm, sizes = [], [], []
    for text in texts:
        start = time.perf_counter()
        audio = await cache.audio(text)
        cold.append(time.perf_counter() - start)
        sizes.append(len(audio))
        start = time.perf_counter()
        await cache.audio(text)
        warm.append(time.perf_counter() - start)
    return "\n".join(
        [
            f"read aloud with {cache.backend.name}: {len(texts)} intake messages (question + buttons)",
            f"synthesis (not cached): median {statistics.median(cold) * 1000:.0f} ms, "
            f"max {max(cold) * 1000:.0f} ms per message; "
            f"audio median {statistics.median(sizes) / 1024:.1f} KiB",
            f"from the cache: median {statistics.median(warm) * 1000:.2f} ms per message "
            f"({statistics.median(cold) / statistics.median(warm):.0f}x faster)",
        ]
    )


def run_bench(
    name: str, settings: Settings, repeat: int | None, patients: int = 2000, latency_ms: float = 60.0
) -> str:
    if name == "load":
        return asyncio.run(
            bench_load(settings, patients if patients != 2000 else 100, latency_ms, repeat or 3)
        )
    if name == "flood":
        return asyncio.run(bench_flood(settings, patients if patients != 2000 else 10, latency_ms))
    if name == "voice":
        return asyncio.run(bench_voice(settings))
    if name == "schedules":
        return asyncio.run(bench_schedules(settings, patients if patients != 2000 else 100_000))
    if name == "due":
        return asyncio.run(bench_due(settings, repeat or 30))
    if name == "reminders":
        return asyncio.run(bench_reminders(settings, patients))
    if name == "nlp":
        return bench_nlp(settings, repeat or 30)
    if name == "lemmas":
        return bench_lemmas(Path("tests/data/lemma_gold.yaml"))
    raise SystemExit(f"unknown benchmark {name!r}")


# -- load: many patients answering at once --------------------------------------------------------
LOAD_STEPS = 8  # answers per patient after /start
STRANGER = 99_999  # a Telegram user without an invite


async def _drive(core: Any, user: int, first: str, waits: list[float], steps: int) -> None:
    """One patient: send ``first``, then answer ``steps`` times as a patient would, measuring the
    wait from each answer until the bot's next message."""
    from bot.testing.patients import SimulatedPatient

    patient = SimulatedPatient(core, user)
    count = len(core.to_chat(user))
    core.user_sends(user, first)
    await patient.next_message(count)
    for _ in range(steps):
        await patient.settle()
        count = len(core.to_chat(user))
        start = time.perf_counter()
        patient.answer()
        await patient.next_message(count)
        waits.append(time.perf_counter() - start)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def _load_run(core: Any, firsts: dict[int, str], steps: int) -> tuple[float, list[float]]:
    """All patients at once. Throughput: answers handled per second while every patient waits for
    the bot (patients / mean wait); the time patients spend reading is left out of it."""
    waits: list[float] = []
    await asyncio.gather(*(_drive(core, user, first, waits, steps) for user, first in firsts.items()))
    return len(firsts) / (sum(waits) / len(waits)), waits


async def bench_load(settings: Settings, patients: int, latency_ms: float, rounds: int = 3) -> str:
    """``patients`` patients answer their intake at once; every Bot API call of the project's fake
    takes ``latency_ms``. Voorgesprek (``python -m bot run``, its own process) side by side with a
    bare aiogram bot that only answers the tap, removes the buttons and sends the next question.
    The two take turns for ``rounds`` rounds (a fresh database each time) and the medians are
    reported: on a small shared machine one run of either can be off by a third."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="voorgesprek-load-"))
    runs: dict[str, list[tuple[float, list[float], int]]] = {"bare aiogram": [], "voorgesprek": []}
    ratios: list[float] = []
    for number in range(rounds):
        for name in runs:
            runs[name].append(
                await _load_side(settings, name, folder / f"round{number}", patients, latency_ms)
            )
        ratios.append(runs["voorgesprek"][-1][0] / runs["bare aiogram"][-1][0])
    lines = [
        f"{patients} patients answering at once, {latency_ms:.0f} ms per Bot API call, "
        f"{LOAD_STEPS} answers each, {rounds} rounds (median)"
    ]
    for name, results in runs.items():
        rate = statistics.median(r for r, _, _ in results)
        p50 = statistics.median(_percentile(w, 0.5) for _, w, _ in results)
        p95 = statistics.median(_percentile(w, 0.95) for _, w, _ in results)
        lines.append(
            f"{name:>13}: {rate:6.1f} answers/s; wait for the next message p50 {p50:.2f} s, p95 {p95:.2f} s"
        )
    p95s = [_percentile(w, 0.95) for _, w, _ in runs["voorgesprek"]]
    lines.append(
        "per round: ratio "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + "; p95 "
        + ", ".join(f"{p:.2f}" for p in p95s)
    )
    lines.append(
        f"throughput ratio: {statistics.median(ratios):.2f} (target >= 0.8); "
        f"p95 {statistics.median(p95s):.2f} s (target <= 1 s at 100 patients, <= 1.5 s at 200)"
    )
    return "\n".join(lines)


async def _load_side(
    settings: Settings,
    name: str,
    folder: Path,
    patients: int,
    latency_ms: float,
    *,
    strangers: int = 0,
    limits: bool = False,
) -> tuple[float, list[float], int]:
    """One run of one bot (its own process, fake Bot API and database): (answers/s, waits,
    replies the stranger got).
    ``strangers``: messages one uninvited user sends at the start, all at once; ``limits``: the
    fake answers 429 above Telegram's rates (30 msg/s, one per second per chat)."""
    import os
    from datetime import timedelta

    from bot.app import build_app
    from bot.testing.fake_telegram import FakeBotAPIServer, FakeTelegram
    from bot.testing.process import BotProcess

    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    core = FakeTelegram(latency=latency_ms / 1000, limits=limits)
    server = FakeBotAPIServer(core)
    await server.start()
    env = {
        **os.environ,
        "BOT_TOKEN": core.token,
        "BOT_USERNAME": core.username,
        "TELEGRAM_API_URL": server.base_url,
        "DATABASE_PATH": str(folder / "load.sqlite3"),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    users = range(20_000, 20_000 + patients)
    if name == "voorgesprek":
        app = await build_app(settings.model_copy(update={"database_path": folder / "load.sqlite3"}))
        practice = await app.repo.practices.add("Benchmark", app.clock.now())
        when = app.clock.now() + timedelta(days=7)
        firsts = {}
        for user in users:
            invite = await app.invites.invite_patient(practice, when, read_aloud=False, simple=False)
            firsts[user] = f"/start {invite.token}"
        await app.close()
        process = BotProcess(env, folder, folder / "bot.log")
    else:
        firsts = {user: "hallo" for user in users}
        process = BotProcess(env, folder, folder / "bare.log", ("bot.testing.bare_bot",))
    await process.start()
    for n in range(strangers):
        core.user_sends(STRANGER, f"hallo, is dit de bot van de praktijk? ({n})")
    try:
        rate, waits = await _load_run(core, firsts, LOAD_STEPS)
        if strangers:
            await asyncio.sleep(1.0)  # replies to the stranger still on their way
        return rate, waits, len(core.to_chat(STRANGER))
    finally:
        if process.proc is not None and process.proc.returncode is None:
            await process.stop()
        await server.stop()


async def bench_flood(settings: Settings, patients: int, latency_ms: float, messages: int = 100) -> str:
    """An uninvited user sends ``messages`` messages at once while ``patients`` patients answer
    their intake; the fake Bot API keeps Telegram's limits (429 above 30 msg/s or one message per
    second to a chat). Strangers get one reply per chat per period and never hold up patients."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="voorgesprek-flood-"))
    results = {}
    for label, count in (("no stranger", 0), (f"{messages} stranger messages", messages)):
        results[label] = await _load_side(
            settings, "voorgesprek", folder / str(count), patients, latency_ms, strangers=count, limits=True
        )
    stranger_replies = results[f"{messages} stranger messages"][2]
    lines = [
        f"{patients} patients answering, {latency_ms:.0f} ms per Bot API call, Telegram's rate limits on; "
        f"an uninvited user sends {messages} messages at once"
    ]
    for label, (_, waits, _) in results.items():
        lines.append(
            f"{label:>22}: patient wait p50 {_percentile(waits, 0.5):.2f} s, "
            f"p95 {_percentile(waits, 0.95):.2f} s, max {max(waits):.2f} s"
        )
    lines.append(f"replies to the stranger: {stranger_replies}; target: a patient's wait stays <= 2 s")
    return "\n".join(lines)
