"""The POH's workplace in the browser: aiohttp, server-rendered pages, no JavaScript needed.

Security: argon2 passwords and TOTP (bot/web/auth.py); session cookie HttpOnly, SameSite=Strict
and Secure behind https; a CSRF token on every form and an Origin check on every state-changing
request; strict security headers and CSP on every response (errors too), HSTS behind https; a
clinician only sees their own practice; every view, export and change of patient data, and every
log-in, failed log-in, lock and log-out, is written to the append-only audit log (NEN 7513: event,
time, patient, user, on behalf of whom, client address). Behind a reverse proxy the client address
is the right-most X-Forwarded-For hop that is not in ``TRUSTED_PROXIES``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, time, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.app import App
from bot.flows.engine import FlowEngine
from bot.numbers import row_id, whole_number
from bot.services.agenda import AgendaView
from bot.services.invites import InviteError
from bot.services.measurements import MeasurementError, show
from bot.services.measurements import parse as parse_measurement
from bot.services.plans import MEASUREMENTS, PlanError, describe_schedule
from bot.services.retention import MAX_KEEP_MONTHS, MAX_REASON, Actor, KeepError, Standing
from bot.services.schedule_input import SCHEDULE_REASONS, ScheduleError, read_schedule
from bot.services.social_map import SocialMap
from bot.storage.models import Consult
from bot.web import exports, health
from bot.web.auth import ENROL_FOR, MIN_PASSWORD, Attempt, AuthError, Session, WebAuth
from bot.web.bulk_invites import BulkInvitePages
from bot.web.charts import Axis, spider_web, trend_line
from bot.web.population import BANDS, K, population
from scheduler.schedules import Schedule

log = logging.getLogger(__name__)
access_log = logging.getLogger("bot.web.access")

COOKIE = "vg_session"
PRE_COOKIE = "vg_pre"  # double-submit CSRF token for the log-in form (no session yet)
PUBLIC = ("/login", "/enrol/", "/static/", "/favicon.ico", "/healthz")
IP_MAX_FAILURES = 20
IP_WINDOW = timedelta(minutes=15)
STATIC = Path(__file__).with_name("static")
SESSION = web.RequestKey("session", Session)
PRE_CSRF = web.RequestKey("pre_csrf", str)
CLIENT = web.RequestKey("client", str)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on our own forms.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
HSTS = "max-age=31536000"
# A short Dutch page for each error status aiohttp raises itself (no such route, a body too big...).
STATUS_KEYS = {
    400: "web.errors.bad_form",
    403: "web.errors.csrf",
    404: "web.errors.no_page",
    405: "web.errors.not_allowed",
    413: "web.errors.too_big",
}
Network = IPv4Network | IPv6Network
# Why a new password will not do (bot.web.auth.password_problem), and a wrong code at enrolment.
PASSWORD_PROBLEMS = {
    "mismatch": "web.enrol.mismatch",
    "too_short": "web.enrol.too_short",
    "too_long": "web.enrol.too_long",
    "username": "web.enrol.username",
    "bad_code": "web.enrol.bad_code",
}


class PageError(Exception):
    """Answer with the Dutch error page ``key`` and ``status`` (raised anywhere in a handler)."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status = status
        self.key = key


def client_address(peer: str | None, forwarded: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: the direct peer, unless that is a trusted proxy; then the right-most
    X-Forwarded-For hop that is not trusted (the ones left of it could be made up by the client).
    An entry that is not an address stops the walk at the last good hop."""

    def is_trusted(address: str) -> bool:
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    address = peer or ""
    if not forwarded or not is_trusted(address):
        return address
    for hop in reversed([h.strip() for h in forwarded.split(",")]):
        try:
            ip_address(hop)
        except ValueError:
            return address
        address = hop
        if not is_trusted(hop):
            return hop
    return address


def throttle_key(address: str) -> str:
    """Whom the log-in throttle counts: an IPv4 address, or an IPv6 /64 (one home or one server)."""
    try:
        ip = ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and getattr(ip, "ipv4_mapped", None) is None:
        return str(ip_network(f"{ip}/64", strict=False))
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower case, default ports left out; None when unreadable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class WebApp:
    def __init__(self, app: App) -> None:
        self.app = app
        self.repo = app.repo.web
        self.auth = WebAuth(self.repo, app.clock)
        self.catalog = app.catalog
        self.secure = bool(app.settings.web_base_url and app.settings.web_base_url.startswith("https://"))
        self.trusted = app.settings.trusted_networks
        self.base_origin = _origin(app.settings.web_base_url) if app.settings.web_base_url else None
        self.headers = {**HEADERS, **({"Strict-Transport-Security": HSTS} if self.secure else {})}
        # Log-in attempts per client address (on top of the per-account lock in WebAuth), and when
        # an address was last told to slow down (audited once per window).
        self.failures: dict[str, list[datetime]] = {}
        self.throttled: dict[str, datetime] = {}
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

    def client(self, request: web.Request) -> str:
        """The real client address (behind a trusted proxy: from X-Forwarded-For)."""
        if CLIENT not in request:
            forwarded = ",".join(request.headers.getall("X-Forwarded-For", [])) or None
            request[CLIENT] = client_address(request.remote, forwarded, self.trusted)
        return request[CLIENT]

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
            client_address=self.client(request),
        )

    async def audit_attempt(self, request: web.Request, attempt: Attempt, step: str) -> None:
        """A failed password or code (and the lock it started): the account when it is a real one,
        else "unknown" (a typed username is never stored); never the password or the code."""
        account = attempt.account
        now = self.app.clock.now()

        async def write(event: str, detail: str) -> None:
            await self.repo.audit(
                now,
                event,
                account.display_name if account else "unknown",
                account_id=account.id if account else None,
                practice_id=account.practice_id if account else None,
                detail=detail,
                client_address=self.client(request),
            )

        await write("login_failed", attempt.outcome if attempt.outcome in ("locked", "not_ready") else step)
        if attempt.locked_for is not None:
            await write("account_locked", f"{int(attempt.locked_for.total_seconds() // 60)} min")

    def _secure(self, response: web.StreamResponse) -> None:
        for key, value in self.headers.items():
            response.headers.setdefault(key, value)

    @web.middleware
    async def security(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every response gets the security headers, errors too; an error is a short Dutch page;
        an unexpected exception is logged by its type only (its text may hold patient data)."""
        try:
            response = await handler(request)
        except PageError as exc:
            response = self.error(request, exc.status, exc.key)
        except web.HTTPException as exc:
            if exc.status < 400:  # a redirect
                self._secure(exc)
                raise
            response = self.error(request, exc.status, STATUS_KEYS.get(exc.status, "web.errors.unexpected"))
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
        except Exception as exc:
            resource = request.match_info.route.resource
            where = resource.canonical if resource is not None else "-"
            log.error("web: unexpected %s on %s %s", type(exc).__name__, request.method, where)
            response = self._unexpected(request)
        self._secure(response)
        return response

    def _unexpected(self, request: web.Request) -> web.Response:
        try:
            return self.error(request, 500, "web.errors.unexpected")
        except Exception as exc:  # the page itself fails: the sentence alone
            log.error("web: the error page failed too (%s)", type(exc).__name__)
            return web.Response(text=self.catalog.t("web.errors.unexpected"), status=500)

    def _same_origin(self, request: web.Request) -> bool:
        """A state-changing request must come from our own pages: its Origin (or, without one, its
        Referer) is WEB_BASE_URL, or without that the Host asked for. No header at all: not a
        browser (browsers send Origin on every POST), so no cross-site forgery; the CSRF token
        still counts."""
        given = request.headers.get("Origin") or request.headers.get("Referer")
        if given is None:
            return True
        origin = _origin(given)  # "null" (a sandboxed or privacy-stripped page) is None here
        if origin is None:
            return False
        if self.base_origin is not None:
            return origin == self.base_origin
        host = _origin(f"{urlsplit(origin).scheme}://{request.host}")
        return host == origin

    async def form(self, request: web.Request) -> Any:
        """The posted form; a body that cannot be read (bad UTF-8, a broken multipart) is a 400."""
        try:
            return await request.post()
        except web.HTTPException:
            raise
        except (ValueError, LookupError, AssertionError, KeyError) as exc:
            log.warning("web: a form that cannot be read refused (%s)", type(exc).__name__)
            raise PageError(400, "web.errors.bad_form") from None

    @web.middleware
    async def sessions(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handler(request)  # no such page or method: 404 / 405
        session = await self.auth.session(request.cookies.get(COOKIE))
        if session is not None:
            request[SESSION] = session
        public = request.path.startswith(PUBLIC)
        if request.method not in SAFE_METHODS:
            if not self._same_origin(request):
                log.warning("web: a %s from another origin refused", request.method)
                raise PageError(403, "web.errors.origin")
            form = await self.form(request)
            expected = session.csrf if session else request.cookies.get(PRE_COOKIE, "")
            given = str(form.get("csrf", ""))
            # As bytes: compare_digest refuses str with non-ASCII characters (a 500 before).
            if not expected or not secrets.compare_digest(given.encode(), expected.encode()):
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
        notice = self.catalog.t("web.login.enrolled") if request.query.get("klaar") == "1" else None
        response = self.page(request, "login.html.j2", problem=None, notice=notice)
        self.set_cookie(response, PRE_COOKIE, pre)
        return response

    async def _reserve(self, request: web.Request) -> None:
        """Count this attempt for the client's address before checking it (so a burst in parallel
        counts too); too many failures in the last ``IP_WINDOW``: 429, audited once per window."""
        now = self.app.clock.now()
        key = throttle_key(self.client(request))
        recent = [t for t in self.failures.get(key, []) if now - t < IP_WINDOW]
        self.failures[key] = recent
        if len(recent) >= IP_MAX_FAILURES:
            last = self.throttled.get(key)
            if last is None or now - last >= IP_WINDOW:
                self.throttled[key] = now
                await self.repo.audit(now, "login_throttled", "unknown", client_address=self.client(request))
            raise PageError(429, "web.login.slow_down")
        recent.append(now)
        if len(self.failures) > 10_000:  # many addresses: forget the quiet ones
            for old in [k for k, times in self.failures.items() if not times or now - times[-1] >= IP_WINDOW]:
                self.failures.pop(old, None)
                self.throttled.pop(old, None)

    def _release(self, request: web.Request) -> None:
        """The attempt succeeded: it does not count against the address."""
        recent = self.failures.get(throttle_key(self.client(request)))
        if recent:
            recent.pop()

    async def login(self, request: web.Request) -> web.StreamResponse:
        await self._reserve(request)
        form = await request.post()
        attempt = await self.auth.check_password(str(form.get("username", "")), str(form.get("password", "")))
        if not attempt.ok or attempt.account is None:
            # Unknown, locked and wrong: one answer, so a username cannot be told from a typo. Only
            # the right password of an account without an app hears that it needs a new link.
            await self.audit_attempt(request, attempt, "password")
            pre = secrets.token_urlsafe(24)
            request[PRE_CSRF] = pre
            key = "web.login.not_ready" if attempt.outcome == "not_ready" else "web.login.wrong"
            problem = self.catalog.t(key)
            response = self.page(request, "login.html.j2", status=401, problem=problem, notice=None)
            self.set_cookie(response, PRE_COOKIE, pre)
            return response
        self._release(request)
        old: Session | None = request.get(SESSION)
        if old is not None:
            await self.auth.end_session(old)
        token, _ = await self.auth.start_session(attempt.account)
        redirect = web.HTTPSeeOther("/login/totp")
        self.set_cookie(redirect, COOKIE, token)
        redirect.del_cookie(PRE_COOKIE, path="/")
        raise redirect

    async def totp_form(self, request: web.Request, problem: str | None = None) -> web.Response:
        session: Session | None = request.get(SESSION)
        if session is None or not session.account.totp_confirmed:
            raise web.HTTPSeeOther("/login")  # an app is linked through an enrolment link, never here
        return self.page(request, "totp.html.j2", status=401 if problem else 200, problem=problem)

    async def totp(self, request: web.Request) -> web.StreamResponse:
        session: Session | None = request.get(SESSION)
        if session is None:
            raise web.HTTPSeeOther("/login")
        await self._reserve(request)
        form = await request.post()
        attempt = await self.auth.verify_totp(session, str(form.get("code", "")))
        if not attempt.ok:
            await self.audit_attempt(request, attempt, "code")
            locked = attempt.outcome == "locked" or attempt.locked_for is not None
            return await self.totp_form(
                request, self.catalog.t("web.login.locked" if locked else "web.login.bad_code")
            )
        self._release(request)
        # A new token for the whole session: one seen during the password step no longer works.
        token, renewed = await self.auth.renew(
            Session(session.token_hash, session.account, session.csrf, True)
        )
        request[SESSION] = renewed
        await self.audit(request, "login")
        redirect = web.HTTPSeeOther("/")
        self.set_cookie(redirect, COOKIE, token)
        raise redirect

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session: Session = request[SESSION]
        await self.audit(request, "logout")
        await self.auth.end_session(session)
        redirect = web.HTTPSeeOther("/login")
        redirect.del_cookie(COOKIE, path="/")
        raise redirect

    async def logout_everywhere(self, request: web.Request) -> web.StreamResponse:
        session: Session = request[SESSION]
        await self.audit(request, "logout_everywhere")
        await self.auth.end_all_sessions(session.account.id)
        redirect = web.HTTPSeeOther("/login")
        redirect.del_cookie(COOKIE, path="/")
        raise redirect

    # -- enrolment: the holder sets their own password and links their app ------------------------
    async def enrol_form(self, request: web.Request, problem: str | None = None) -> web.Response:
        enrolment = await self.auth.enrolment(request.match_info["token"])
        if enrolment is None:
            raise PageError(410, "web.enrol.expired")
        pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
        request[PRE_CSRF] = pre
        uri = self.auth.provisioning_uri(enrolment.account, enrolment.secret)
        zone = self.app.settings.zone
        response = self.page(
            request,
            "enrol.html.j2",
            status=400 if problem else 200,
            token=request.match_info["token"],
            account=enrolment.account,
            secret=enrolment.secret,
            qr=qr_svg(uri),
            expires=self.catalog.format_when(enrolment.expires_at.astimezone(zone), "short"),
            min_password=MIN_PASSWORD,
            problem=problem,
        )
        self.set_cookie(response, PRE_COOKIE, pre)
        return response

    async def enrol(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        enrolment = await self.auth.enrolment(token)
        if enrolment is None:
            raise PageError(410, "web.enrol.expired")
        form = await request.post()
        outcome = await self.auth.enrol(
            token, str(form.get("password", "")), str(form.get("repeat", "")), str(form.get("code", ""))
        )
        if outcome == "expired":
            raise PageError(410, "web.enrol.expired")
        if outcome != "ok":
            return await self.enrol_form(request, self.catalog.t(PASSWORD_PROBLEMS[outcome], n=MIN_PASSWORD))
        account = enrolment.account
        await self.repo.audit(
            self.app.clock.now(),
            "enrolled",
            account.display_name,
            account_id=account.id,
            practice_id=account.practice_id,
            client_address=self.client(request),
        )
        redirect = web.HTTPSeeOther("/login?klaar=1")
        redirect.del_cookie(PRE_COOKIE, path="/")
        raise redirect

    # -- my account: a new password, log out everywhere ---------------------------------------------
    async def account_page(
        self, request: web.Request, problem: str | None = None, done: bool = False
    ) -> web.Response:
        return self.page(
            request,
            "account.html.j2",
            status=400 if problem else 200,
            problem=problem,
            done=done,
            min_password=MIN_PASSWORD,
        )

    async def change_password(self, request: web.Request) -> web.StreamResponse:
        session: Session = request[SESSION]
        await self._reserve(request)
        form = await request.post()
        attempt = await self.auth.change_password(
            session,
            str(form.get("current", "")),
            str(form.get("code", "")),
            str(form.get("password", "")),
            str(form.get("repeat", "")),
        )
        if attempt.outcome in ("wrong", "locked"):
            await self.audit_attempt(request, attempt, "change_password")
            return await self.account_page(request, self.catalog.t("web.account.wrong"))
        if not attempt.ok:  # the new password will not do
            problem = self.catalog.t(PASSWORD_PROBLEMS[attempt.outcome], n=MIN_PASSWORD)
            return await self.account_page(request, problem)
        self._release(request)
        await self.audit(request, "change_password")
        token, renewed = await self.auth.renew(session)
        request[SESSION] = renewed
        response = await self.account_page(request, done=True)
        self.set_cookie(response, COOKIE, token)
        return response

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
        if consult_id is None:  # not a number, or beyond what SQLite stores
            raise PageError(400, "web.errors.bad_address")
        consult = await self.app.repo.consults.get(consult_id)
        if consult is None or consult.practice_id != session.account.practice_id:
            raise PageError(404, "web.errors.not_found")
        if consult.status == "erased":
            raise PageError(410, "web.errors.erased")
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
        try:
            title = self.catalog.t("web.agenda.pdf_title", id=consult.id)
            body = exports.pdf(title, text, self.app.settings.pdf_font)
        except exports.PdfFontMissing as exc:
            log.error("agenda PDF not made: %s; set PDF_FONT to a Unicode TrueType font", exc)
            return self.error(request, 503, "web.errors.pdf_font")
        await self.audit(request, "export_pdf", consult)
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
        action = row_id(request.match_info["action"])
        if action is None:
            raise PageError(400, "web.errors.bad_address")
        goals = await self.app.plans.goals(consult.patient_id)
        if action not in {a.id for g in goals for a in g.actions}:
            raise PageError(404, "web.errors.not_found")
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
        reminders = await self.app.repo.reminders.of_patient(
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
        self, request: web.Request, link: dict[str, str] | None = None, problem: str | None = None
    ) -> web.Response:
        session: Session = request[SESSION]
        if not session.account.admin:
            return self.error(request, 403, "web.errors.admin_only")
        rows = await self.repo.accounts(session.account.practice_id)
        return self.page(
            request, "accounts.html.j2", rows=rows, link=link, problem=problem, me=session.account.id
        )

    def enrol_link(self, request: web.Request, token: str) -> dict[str, str]:
        """The link to hand to the account holder (WEB_BASE_URL, else the address asked for)."""
        base = self.app.settings.web_base_url or f"{request.scheme}://{request.host}"
        expires = self.app.clock.now() + ENROL_FOR
        when = self.catalog.format_when(expires.astimezone(self.app.settings.zone), "short")
        return {"url": f"{base.rstrip('/')}/enrol/{token}", "expires": when}

    async def add_account(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        if not session.account.admin:
            return self.error(request, 403, "web.errors.admin_only")
        form = await request.post()
        username = str(form.get("username", "")).strip()
        try:
            account, token = await self.auth.create_account(
                session.account.practice_id,
                username,
                str(form.get("name", "")).strip() or username,
                role="admin" if form.get("role") == "admin" else "poh",
            )
        except AuthError:
            return await self.accounts(request, problem=self.catalog.t("web.accounts.problem"))
        await self.audit(request, "create_account", detail=f"account {account}")
        link = {"username": username, **self.enrol_link(request, token)}
        return await self.accounts(request, link=link)

    async def reset_account(self, request: web.Request) -> web.Response:
        """A new enrolment link; the old password, app and sessions stop working."""
        session: Session = request[SESSION]
        if not session.account.admin:
            return self.error(request, 403, "web.errors.admin_only")
        account_id = row_id(request.match_info["account"])
        if account_id is None:
            raise PageError(400, "web.errors.bad_address")
        row = await self.repo.account(account_id)
        if row is None or row["practice_id"] != session.account.practice_id:
            raise PageError(404, "web.errors.no_page")
        if account_id == session.account.id:  # yourself: change your password on your own page
            return await self.accounts(request, problem=self.catalog.t("web.accounts.not_yourself"))
        token = await self.auth.reset_account(account_id)
        await self.audit(request, "reset_account", detail=f"account {account_id}")
        link = {"username": row["username"], **self.enrol_link(request, token)}
        return await self.accounts(request, link=link)

    # -- retention (AVG storage limitation; the rule is in bot/services/retention.py) -------------
    def _day(self, day: date) -> str:
        months = self.catalog.raw("months")
        return self.catalog.t("web.retention.date", day=day.day, month=months[day.month - 1], year=day.year)

    def _actor(self, request: web.Request) -> Actor:
        account = request[SESSION].account
        return Actor(account.display_name, account.id, account.practice_id, self.client(request))

    async def retention_page(self, request: web.Request, problem: str | None = None) -> web.Response:
        """Who is due (or due within 30 days) for erasure, and who is kept longer: consult numbers
        and dates, no names (as the consult list)."""
        session: Session = request[SESSION]
        overview = await self.app.retention.overview(session.account.practice_id)
        notices = {"bewaard": "web.retention.kept_done", "gewist": "web.retention.erased_done"}
        notice = next((self.catalog.t(k) for name, k in notices.items() if name in request.query), None)
        await self.audit(request, "view_retention")
        return self.page(
            request,
            "retention.html.j2",
            status=400 if problem else 200,
            o=overview,
            today=self.app.retention.today(),
            day=self._day,
            problem=self.catalog.t(problem) if problem else None,
            notice=notice,
            max_months=MAX_KEEP_MONTHS,
            max_reason=MAX_REASON,
        )

    async def retention_keep(self, request: web.Request) -> web.StreamResponse:
        """Keep a patient's data longer: months (1-120) and a reason (stored, never logged)."""
        consult = await self._consult(request)
        form = await request.post()
        months = whole_number(str(form.get("months", "")))
        try:
            until = self.app.retention.keep_until(months if months is not None else 0)
            kept = await self.app.retention.keep(
                consult.patient_id, until, str(form.get("reason", "")), self._actor(request)
            )
        except KeepError as exc:
            return await self.retention_page(request, problem=exc.key)
        if not kept:
            raise PageError(404, "web.errors.not_found")
        raise web.HTTPSeeOther("/retention?bewaard=1")

    async def _listed(self, request: web.Request) -> tuple[Consult, Standing]:
        """The consult of the address, for an admin, when its patient is on the retention list."""
        session: Session = request[SESSION]
        if not session.account.admin:
            raise PageError(403, "web.errors.admin_only")
        consult = await self._consult(request)
        found = await self.app.retention.standings(
            practice_id=session.account.practice_id, patient_id=consult.patient_id
        )
        if not found:
            raise PageError(409, "web.retention.not_listed")
        return consult, found[0]

    async def retention_confirm(self, request: web.Request) -> web.Response:
        consult, standing = await self._listed(request)
        return self.page(request, "retention_erase.html.j2", consult_id=consult.id, s=standing, day=self._day)

    async def retention_erase(self, request: web.Request) -> web.StreamResponse:
        """An admin erases a listed patient now, after the confirmation page (``confirm=yes``)."""
        consult, _ = await self._listed(request)
        form = await request.post()
        if form.get("confirm") != "yes":
            raise PageError(400, "web.errors.bad_form")
        if not await self.app.retention.erase(consult.patient_id, self._actor(request), only_due=False):
            raise PageError(409, "web.retention.not_listed")
        raise web.HTTPSeeOther("/retention?gewist=1")

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
                web.post("/logout/all", self.logout_everywhere),
                web.get("/enrol/{token}", self.enrol_form),
                web.post("/enrol/{token}", self.enrol),
                web.get("/account", self.account_page),
                web.post("/account/password", self.change_password),
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
                web.post("/admin/accounts/{account}/reset", self.reset_account),
                web.get("/population", self.population_page),
                web.get("/retention", self.retention_page),
                web.post("/retention/{consult}/keep", self.retention_keep),
                web.get("/retention/{consult}/erase", self.retention_confirm),
                web.post("/retention/{consult}/erase", self.retention_erase),
                web.get("/consult/{consult}/timeline", self.timeline),
                web.get("/invite", self.invite_form),
                *BulkInvitePages(self).routes(),
                web.post("/invite", self.invite),
                web.get("/favicon.ico", self.no_icon),
                web.get(health.PATH, health.Healthz(self.app).get),  # no log-in, no patient data
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


class AccessLog(AbstractAccessLogger):
    """One line per request on ``bot.web.access``: method, the route with its numbers filled in,
    status, milliseconds. Never a query string, a token, or a path someone typed (a path that
    matches no route is ``-``): those can hold names."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %d %d ms", request.method, route_of(request), response.status, round(time * 1000)
        )


_STATIC_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def route_of(request: web.BaseRequest) -> str:
    """``/consult/12/timeline``; a part that is not a plain number is ``?``, a token ``...``."""
    info = getattr(request, "match_info", None)
    resource = info.route.resource if info is not None else None
    if info is None or resource is None:
        return "-"
    if isinstance(resource, web.StaticResource):
        name = info.get("filename", "")
        return f"{resource.canonical}/{name if _STATIC_NAME.fullmatch(name) else '?'}"

    def part(match: re.Match[str]) -> str:
        value = info.get(match[1], "")
        if match[1] == "token":
            return "..."
        return value if re.fullmatch(r"[0-9]{1,19}", value) else "?"

    return re.sub(r"\{(\w+)\}", part, resource.canonical)


async def serve(app: App, host: str, port: int) -> web.AppRunner:
    """Serve the web app (port 0: any free port; see ``runner.addresses``)."""
    runner = web.AppRunner(WebApp(app).routes(), access_log_class=AccessLog, access_log=access_log)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("web app listening on %s", runner.addresses)
    return runner
