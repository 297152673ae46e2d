"""The POH's workplace in the browser: aiohttp, server-rendered pages, no JavaScript needed.

Security: argon2 passwords and TOTP (bot/web/auth.py); session cookie HttpOnly, SameSite=Strict
and Secure behind https; a CSRF token on every form; strict security headers and CSP; a clinician
only sees their own practice; every view, export and change of patient data is written to the
append-only audit log (NEN 7513: event, time, patient, user, on behalf of whom).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.app import App
from bot.flows.engine import FlowEngine
from bot.numbers import row_id
from bot.services.agenda import AgendaView
from bot.services.invites import InviteError
from bot.services.measurements import MeasurementError, show
from bot.services.measurements import parse as parse_measurement
from bot.services.plans import MEASUREMENTS, PlanError, describe_schedule
from bot.services.schedule_input import SCHEDULE_REASONS, ScheduleError, read_schedule
from bot.services.social_map import SocialMap
from bot.storage.models import Consult
from bot.web import exports
from bot.web.auth import AuthError, Session, WebAuth
from bot.web.charts import Axis, spider_web, trend_line
from bot.web.population import BANDS, K, population
from scheduler.schedules import Schedule

log = logging.getLogger(__name__)

COOKIE = "vg_session"
PRE_COOKIE = "vg_pre"  # double-submit CSRF token for the log-in form (no session yet)
PUBLIC = ("/login", "/static/", "/favicon.ico")
IP_MAX_FAILURES = 20
IP_WINDOW = timedelta(minutes=15)
STATIC = Path(__file__).with_name("static")
SESSION = web.RequestKey("session", Session)
PRE_CSRF = web.RequestKey("pre_csrf", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class WebApp:
    def __init__(self, app: App) -> None:
        self.app = app
        self.repo = app.repo.web
        self.auth = WebAuth(self.repo, app.clock)
        self.catalog = app.catalog
        self.secure = bool(app.settings.web_base_url and app.settings.web_base_url.startswith("https://"))
        # Failed log-ins per client address (on top of the per-account lockout in WebAuth).
        self.failures: dict[str, list[datetime]] = {}
        kaart = app.settings.sociale_kaart_file or app.settings.content_dir / "sociale_kaart.yaml"
        self.social_map = SocialMap.load(kaart, app.catalog)

    # -- plumbing --------------------------------------------------------------------------
    def page(self, request: web.Request, name: str, status: int = 200, **params: Any) -> web.Response:
        session: Session | None = request.get(SESSION)
        html = self.catalog.render_page(
            name, session=session, csrf=session.csrf if session else request.get(PRE_CSRF, ""), **params
        )
        return web.Response(text=html, content_type="text/html", status=status)

    def error(self, request: web.Request, status: int, key: str) -> web.Response:
        return self.page(request, "error.html.j2", status=status, message=self.catalog.t(key))

    def set_cookie(self, response: web.StreamResponse, name: str, value: str) -> None:
        response.set_cookie(name, value, httponly=True, samesite="Strict", secure=self.secure, path="/")

    async def audit(
        self, request: web.Request, event: str, consult: Consult | None = None, detail: str | None = None
    ) -> None:
        session: Session = request[SESSION]
        account = session.account
        on_behalf = None
        if consult is not None and consult.clinician_id and consult.clinician_id != account.clinician_id:
            clinician = await self.app.repo.clinicians.get(consult.clinician_id)
            on_behalf = clinician.display_name if clinician else None
        await self.repo.audit(
            self.app.clock.now(),
            event,
            account.display_name,
            account_id=account.id,
            practice_id=account.practice_id,
            patient_id=consult.patient_id if consult else None,
            consult_id=consult.id if consult else None,
            on_behalf_of=on_behalf,
            detail=detail,
        )

    @web.middleware
    async def security(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except (web.HTTPNotFound, web.HTTPGone) as exc:
            key = "web.errors.not_found" if exc.status == 404 else "web.errors.erased"
            response = self.error(request, exc.status, key)
        except web.HTTPException as exc:
            for key, value in HEADERS.items():
                exc.headers.setdefault(key, value)
            raise
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @web.middleware
    async def sessions(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        session = await self.auth.session(request.cookies.get(COOKIE))
        if session is not None:
            request[SESSION] = session
        public = request.path.startswith(PUBLIC)
        if request.method == "POST":
            form = await request.post()
            expected = session.csrf if session else request.cookies.get(PRE_COOKIE, "")
            given = str(form.get("csrf", ""))
            if not expected or not secrets.compare_digest(given, expected):
                log.warning("web: form without a valid CSRF token refused")
                return self.error(request, 403, "web.errors.csrf")
        if public:
            return await handler(request)
        if session is None:
            raise web.HTTPSeeOther("/login")
        if not session.second_factor:
            raise web.HTTPSeeOther("/login/totp")
        return await handler(request)

    # -- log-in ----------------------------------------------------------------------------
    async def login_form(self, request: web.Request) -> web.Response:
        # Keep the browser's token: a second tab or a redirected favicon request must not void the form.
        pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
        request[PRE_CSRF] = pre
        response = self.page(request, "login.html.j2", problem=None)
        self.set_cookie(response, PRE_COOKIE, pre)
        return response

    def _throttled(self, request: web.Request) -> bool:
        """Too many failed log-ins from this address in the last ``IP_WINDOW``."""
        now = self.app.clock.now()
        recent = [t for t in self.failures.get(request.remote or "", []) if now - t < IP_WINDOW]
        self.failures[request.remote or ""] = recent
        return len(recent) >= IP_MAX_FAILURES

    def _failed(self, request: web.Request) -> None:
        self.failures.setdefault(request.remote or "", []).append(self.app.clock.now())

    async def login(self, request: web.Request) -> web.StreamResponse:
        if self._throttled(request):
            return self.error(request, 429, "web.login.slow_down")
        form = await request.post()
        account, outcome = await self.auth.check_password(
            str(form.get("username", "")), str(form.get("password", ""))
        )
        if account is None:
            self._failed(request)
            pre = secrets.token_urlsafe(24)
            request[PRE_CSRF] = pre
            key = "web.login.locked" if outcome == "locked" else "web.login.wrong"
            response = self.page(request, "login.html.j2", status=401, problem=self.catalog.t(key))
            self.set_cookie(response, PRE_COOKIE, pre)
            return response
        token, _ = await self.auth.start_session(account)
        redirect = web.HTTPSeeOther("/login/totp")
        self.set_cookie(redirect, COOKIE, token)
        redirect.del_cookie(PRE_COOKIE, path="/")
        raise redirect

    async def totp_form(self, request: web.Request, problem: str | None = None) -> web.Response:
        session: Session | None = request.get(SESSION)
        if session is None:
            raise web.HTTPSeeOther("/login")
        enrol = None
        if not session.account.totp_confirmed:
            secret = await self.auth.totp_secret(session.account)
            uri = self.auth.provisioning_uri(session.account, secret)
            enrol = {"secret": secret, "qr": qr_svg(uri)}
        return self.page(
            request, "totp.html.j2", status=401 if problem else 200, enrol=enrol, problem=problem
        )

    async def totp(self, request: web.Request) -> web.StreamResponse:
        session: Session | None = request.get(SESSION)
        if session is None:
            raise web.HTTPSeeOther("/login")
        if self._throttled(request):
            return self.error(request, 429, "web.login.slow_down")
        form = await request.post()
        if not await self.auth.verify_totp(session, str(form.get("code", ""))):
            self._failed(request)
            account = await self.repo.account(session.account.id)
            locked = bool(account and account["locked_until"])
            return await self.totp_form(
                request, self.catalog.t("web.login.locked" if locked else "web.login.bad_code")
            )
        request[SESSION] = Session(session.token_hash, session.account, session.csrf, True)
        await self.audit(request, "login")
        raise web.HTTPSeeOther("/")

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session: Session = request[SESSION]
        await self.audit(request, "logout")
        await self.auth.end_session(session)
        redirect = web.HTTPSeeOther("/login")
        redirect.del_cookie(COOKIE, path="/")
        raise redirect

    # -- pages -----------------------------------------------------------------------------
    async def consults(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        zone = self.app.settings.zone
        today = datetime.combine(self.app.clock.now().astimezone(zone).date(), time(), tzinfo=zone)
        rows = []
        for consult in await self.app.repo.consults.upcoming(session.account.practice_id, today, limit=100):
            flags = await self.app.repo.safety.flags(consult.id)
            since = consult.scheduled_at - timedelta(days=366)
            missed = sum(
                a.missed
                for g in await self.app.agenda.progress(consult.patient_id, since, consult.scheduled_at)
                for a in g.actions
            )
            rows.append(
                {
                    "id": consult.id,
                    "when": self.app.agenda.when(consult),
                    "status": self.app.agenda.status_label(consult.status),
                    "status_key": consult.status,
                    "red_flag": bool(flags),
                    "missed": missed,
                }
            )
        await self.audit(request, "view_consult_list")
        return self.page(request, "consults.html.j2", consults=rows)

    async def _consult(self, request: web.Request) -> Consult:
        session: Session = request[SESSION]
        consult_id = row_id(request.match_info["consult"])
        consult = await self.app.repo.consults.get(consult_id) if consult_id is not None else None
        if consult is None or consult.practice_id != session.account.practice_id:
            raise web.HTTPNotFound()
        if consult.status == "erased":
            raise web.HTTPGone()
        return consult

    async def agenda(self, request: web.Request) -> web.Response:
        consult = await self._consult(request)
        view = await self.app.agenda.view(consult.id, include_name=True)
        assert view is not None
        previous = await self.app.repo.consults.previous(consult)
        before = await self.app.repo.answers.of_consult(previous.id) if previous else {}
        axes = [Axis(d.name, d.score, before.get(f"{d.id}.score"), d.talk) for d in view.dimensions]
        t = self.catalog.t
        chart = spider_web(axes, t("web.agenda.chart_title"), t("web.agenda.now"), t("web.agenda.before"))
        goals = await self.app.plans.goals(consult.patient_id)
        trends = self._trends(view)
        by_label = {t.label: t.id for t in self.catalog.themes}
        suggestions = self.social_map.suggest({by_label[x] for x in view.all_themes if x in by_label})
        await self.audit(request, "view_agenda", consult)
        return self.page(
            request,
            "agenda.html.j2",
            a=view,
            consult=consult,
            chart=chart,
            has_before=bool(before),
            goals=goals,
            when=lambda action: describe_schedule(self.catalog, action.schedule),
            limits=lambda action: {k: show(action.measurement, v) for k, v in (action.limits or {}).items()},
            trends=trends,
            soep=exports.soep(self.catalog, view, goals),
            measurements=MEASUREMENTS,
            problem=request.query.get("probleem"),
            reason=request.query.get("reden") if request.query.get("reden") in SCHEDULE_REASONS else None,
            suggestions=[(r, [self.catalog.theme(t).label for t in m]) for r, m in suggestions],
        )

    def _trends(self, view: AgendaView) -> list[dict[str, Any]]:
        """A small chart per measured action, from the agenda's own progress figures."""
        out = []
        for goal in view.progress:
            for action in goal.actions:
                if action.measurement and action.values:
                    name = self.catalog.t(f"measure.names.{action.measurement}")
                    line = trend_line([float(v[0]) for v in action.values], name)
                    last = show(action.measurement, action.values[-1])
                    out.append({"name": name, "svg": line, "last": last, "count": len(action.values)})
        return out

    async def soep(self, request: web.Request) -> web.Response:
        consult = await self._consult(request)
        view = await self.app.agenda.view(consult.id)
        assert view is not None
        goals = await self.app.plans.goals(consult.patient_id)
        await self.audit(request, "export_soep", consult)
        return web.Response(text=exports.soep(self.catalog, view, goals), content_type="text/plain")

    async def agenda_pdf(self, request: web.Request) -> web.Response:
        consult = await self._consult(request)
        text = await self.app.agenda.text(consult.id, include_name=True) or ""
        await self.audit(request, "export_pdf", consult)
        body = exports.pdf(self.catalog.t("web.agenda.pdf_title", id=consult.id), text)
        return web.Response(
            body=body,
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="agenda-{consult.id}.pdf"'},
        )

    async def fhir(self, request: web.Request) -> web.Response:
        consult = await self._consult(request)
        engine: FlowEngine = self.app.patients.engine
        answers = await self.app.repo.answers.of_consult(consult.id)
        patient_ref = f"Patient/{consult.patient_id}"
        q = exports.questionnaire(engine)
        authored = consult.completed_at or self.app.clock.now()
        qr = exports.questionnaire_response(engine, answers, patient_ref, authored, consult.status == "ready")
        goals = await self.app.plans.goals(consult.patient_id)
        data = exports.validate(
            exports.bundle([q, qr, *exports.plan_resources(self.catalog, goals, patient_ref)])
        )
        await self.audit(request, "export_fhir", consult)
        return web.Response(
            text=json.dumps(data, ensure_ascii=False, indent=2),
            content_type="application/fhir+json",
            headers={"Content-Disposition": f'attachment; filename="voorgesprek-{consult.id}.fhir.json"'},
        )

    # -- the plan editor -----------------------------------------------------------------------
    async def add_goal(self, request: web.Request) -> web.StreamResponse:
        consult = await self._consult(request)
        form = await request.post()
        session: Session = request[SESSION]
        try:
            follow = date.fromisoformat(str(form["follow_up"])) if form.get("follow_up") else None
            goal = await self.app.plans.add_goal(
                consult.patient_id, str(form.get("text", "")), f"web:{session.account.id}", follow
            )
        except (PlanError, ValueError):
            raise web.HTTPSeeOther(f"/consult/{consult.id}?probleem=doel#plan") from None
        await self.audit(request, "change_plan", consult, f"goal {goal} added")
        raise web.HTTPSeeOther(f"/consult/{consult.id}#plan")

    async def add_action(self, request: web.Request) -> web.StreamResponse:
        consult = await self._consult(request)
        form = await request.post()
        session: Session = request[SESSION]
        try:
            goal = int(str(form.get("goal", "")))
            if goal not in {g.id for g in await self.app.plans.goals(consult.patient_id)}:
                raise PlanError("not this patient's goal")
            schedule = self._schedule(form)
            measure = str(form.get("measure") or "") or None
            limits = {}
            for side in ("above", "below"):
                typed = str(form.get(f"limit_{side}") or "").strip()
                if typed and measure is None:
                    raise PlanError("a limit needs a measurement")
                if typed and measure is not None:
                    limits[side] = parse_measurement(measure, typed)
            action = await self.app.plans.add_action(
                goal,
                str(form.get("what", "")),
                schedule,
                f"web:{session.account.id}",
                measure,
                limits=limits or None,
            )
        except ScheduleError as exc:  # say what to change: the time, the days, a date, the interval
            reason = exc.key.removeprefix("bad.")
            raise web.HTTPSeeOther(f"/consult/{consult.id}?probleem=actie&reden={reason}#plan") from None
        except (PlanError, ValueError, MeasurementError):
            raise web.HTTPSeeOther(f"/consult/{consult.id}?probleem=actie#plan") from None
        await self.audit(request, "change_plan", consult, f"action {action} added")
        raise web.HTTPSeeOther(f"/consult/{consult.id}#plan")

    def _schedule(self, form: Any) -> Schedule:
        now = self.app.clock.now().astimezone(self.app.settings.zone)
        return read_schedule(
            str(form.get("schedule", "daily")),
            str(form.get("at", "09:00")),
            today=now.date(),
            now=now.time(),
            weekday_names=self.catalog.raw("weekdays"),
            days=[str(d) for d in form.getall("days", [])],
            start=str(form.get("start") or "") or None,
            until=str(form.get("until") or "") or None,
            every=str(form.get("every") or "1"),
        )

    async def end_action(self, request: web.Request) -> web.StreamResponse:
        consult = await self._consult(request)
        action = int(request.match_info["action"])
        goals = await self.app.plans.goals(consult.patient_id)
        if action not in {a.id for g in goals for a in g.actions}:
            raise web.HTTPNotFound()
        await self.app.plans.end_action(action)
        await self.audit(request, "change_plan", consult, f"action {action} ended")
        raise web.HTTPSeeOther(f"/consult/{consult.id}#plan")

    # -- the practice ----------------------------------------------------------------------------
    async def population_page(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        numbers = await population(self.app, session.account.practice_id)
        await self.audit(request, "view_population")
        return self.page(request, "population.html.j2", p=numbers, k=K, bands=[b[0] for b in BANDS])

    async def timeline(self, request: web.Request) -> web.Response:
        consult = await self._consult(request)
        consults = await self.app.repo.consults.of_patient(consult.patient_id)
        goals = await self.app.plans.goals(consult.patient_id, with_history=True)
        reminders = await self.app.reminders.reminders.of_patient(
            consult.patient_id, consults[0].scheduled_at - timedelta(days=366), self.app.clock.now()
        )
        events: list[tuple[datetime, str, str | None]] = [
            (
                c.scheduled_at,
                self.catalog.t(
                    "web.timeline.consult", id=c.id, status=self.app.agenda.status_label(c.status)
                ),
                f"/consult/{c.id}",
            )
            for c in consults
        ]
        for r in reminders:
            label = self.catalog.t(f"web.timeline.reminder_{r.status}", what=r.what or r.goal_text)
            events.append((r.due_at, label, None))
        events.sort(key=lambda e: e[0])
        zone = self.app.settings.zone
        rows = [
            (self.catalog.format_when(at.astimezone(zone), "short"), text, link) for at, text, link in events
        ]
        await self.audit(request, "view_timeline", consult)
        return self.page(
            request,
            "timeline.html.j2",
            consult=consult,
            rows=rows,
            goals=goals,
            when=lambda action: describe_schedule(self.catalog, action.schedule),
        )

    async def invite_form(self, request: web.Request) -> web.Response:
        return self.page(request, "invite.html.j2", invite=None, problem=None)

    async def invite(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        form = await request.post()
        zone = self.app.settings.zone
        try:
            day, hour = str(form.get("date", "")), str(form.get("time", ""))
            at = datetime.fromisoformat(f"{day}T{hour}").replace(tzinfo=zone)
            invite = await self.app.invites.invite_patient(
                session.account.practice_id,
                at,
                clinician_id=session.account.clinician_id,
                name=str(form.get("name") or "").strip() or None,
                simple={"yes": True, "no": False}.get(str(form.get("simple"))),
                read_aloud={"yes": True, "no": False}.get(str(form.get("read_aloud"))),
            )
        except (ValueError, InviteError):
            return self.page(
                request,
                "invite.html.j2",
                status=400,
                invite=None,
                problem=self.catalog.t("web.invite.problem"),
            )
        username = self.app.settings.bot_username or "<BOT_USERNAME>"
        link = f"https://t.me/{username}?start={invite.token}"
        consult = await self.app.repo.consults.get(invite.consult_id)
        await self.audit(request, "create_invite", consult)
        return self.page(
            request,
            "invite.html.j2",
            invite={
                "link": link,
                "qr": qr_svg(link),
                "when": self.catalog.format_when(at),
                "expires": self.catalog.format_when(invite.expires_at.astimezone(zone), "short"),
            },
            problem=None,
        )

    # -- admin ---------------------------------------------------------------------------------
    async def accounts(
        self, request: web.Request, created: dict[str, str] | None = None, problem: str | None = None
    ) -> web.Response:
        session: Session = request[SESSION]
        if not session.account.admin:
            return self.error(request, 403, "web.errors.admin_only")
        rows = await self.repo.accounts(session.account.practice_id)
        return self.page(request, "accounts.html.j2", rows=rows, created=created, problem=problem)

    async def add_account(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        if not session.account.admin:
            return self.error(request, 403, "web.errors.admin_only")
        form = await request.post()
        password = secrets.token_urlsafe(12)
        username = str(form.get("username", "")).strip()
        try:
            account = await self.auth.create_account(
                session.account.practice_id,
                username,
                str(form.get("name", "")).strip() or username,
                password,
                role="admin" if form.get("role") == "admin" else "poh",
            )
        except AuthError:
            return await self.accounts(request, problem=self.catalog.t("web.accounts.problem"))
        await self.audit(request, "create_account", detail=f"account {account}")
        return await self.accounts(request, created={"username": username, "password": password})

    # -- admin (audit) ---------------------------------------------------------------------------
    async def audit_log(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        if not session.account.admin:
            return self.error(request, 403, "web.errors.admin_only")
        rows = await self.repo.audit_rows(session.account.practice_id)
        await self.audit(request, "view_audit_log")
        return self.page(request, "audit.html.j2", rows=rows)

    async def no_icon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    def routes(self) -> web.Application:
        application = web.Application(middlewares=[self.security, self.sessions])
        application.add_routes(
            [
                web.get("/login", self.login_form),
                web.post("/login", self.login),
                web.get("/login/totp", self.totp_form),
                web.post("/login/totp", self.totp),
                web.post("/logout", self.logout),
                web.get("/", self.consults),
                web.get("/consult/{consult}", self.agenda),
                web.get("/consult/{consult}/soep.txt", self.soep),
                web.get("/consult/{consult}/agenda.pdf", self.agenda_pdf),
                web.get("/consult/{consult}/fhir.json", self.fhir),
                web.post("/consult/{consult}/plan/goal", self.add_goal),
                web.post("/consult/{consult}/plan/action", self.add_action),
                web.post("/consult/{consult}/plan/action/{action}/end", self.end_action),
                web.get("/admin/audit", self.audit_log),
                web.get("/admin/accounts", self.accounts),
                web.post("/admin/accounts", self.add_account),
                web.get("/population", self.population_page),
                web.get("/consult/{consult}/timeline", self.timeline),
                web.get("/invite", self.invite_form),
                web.post("/invite", self.invite),
                web.get("/favicon.ico", self.no_icon),
                web.static("/static", STATIC),
            ]
        )
        return application


def qr_svg(data: str) -> str:
    """A QR code as inline SVG (for TOTP enrolment and printed invites)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


async def serve(app: App, host: str, port: int) -> web.AppRunner:
    """Serve the web app (port 0: any free port; see ``runner.addresses``)."""
    runner = web.AppRunner(WebApp(app).routes(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("web app listening on %s", runner.addresses)
    return runner
