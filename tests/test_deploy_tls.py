"""The systemd + nginx route (README "Run it for a practice", 3B and 4) rehearsed for real, over TLS.

A throwaway CA signs a certificate for ``localhost`` (openssl); ``deploy/nginx.conf.example`` is
turned into a runnable site by a few explicit substitutions (each must match exactly as often as
written, so the test breaks when the example changes shape: then look at the substitutions
again) and wrapped in a minimal top-level nginx.conf, so nginx runs without root on free ports of
127.0.0.1. The bot and the web app run the units' ExecStart commands in a stand-in for their
working folder, with the settings README 3B puts in /etc/voorgesprek/env (``WEB_BASE_URL=https://...``,
``TRUSTED_PROXIES=127.0.0.1``) and the fake Bot API in place of Telegram, started together as
``systemctl enable --now`` does. Then, through nginx only: ``/healthz`` is 200 and ``ok`` once the
scheduler ticked, ``python -m bot health --json`` exits 0, port 80 redirects to https and serves
certbot's webroot, the log-in page carries HSTS and the other security headers, a failed log-in
is audited with the address nginx saw (X-Forwarded-For from the trusted proxy, a made-up hop
ignored), and ``/healthz`` from an address the site does not allow is 403.

Not rehearsed here: systemd itself (the units' sandboxing), certbot's real run, a public DNS name.
Skipped only when nginx or openssl is missing (``bash tests/run.sh`` installs both).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bot.testing.fake_telegram import FakeBotAPIServer, FakeTelegram
from tests.conftest import run_cli
from tests.test_deploy import DEPLOY, NGINX, SETTINGS, TEMP_PATHS, free_port, values

UNIT_PYTHON = "/opt/voorgesprek/bin/python"
STATE = "/var/lib/voorgesprek"  # the units' WorkingDirectory and HOME
EXAMPLE_NAME = "voorgesprek.example.nl"
# A client address the site does not allow for /healthz and that is not a trusted proxy (Linux
# answers on all of 127.0.0.0/8).
OUTSIDER = "127.0.0.2"
MADE_UP = "198.51.100.7"  # an X-Forwarded-For hop a client puts in itself
READY_WITHIN = 45.0  # seconds for both processes to start and the scheduler's first tick


def _nginx() -> str | None:
    # Debian puts nginx in /usr/sbin, which is not on a normal user's PATH.
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


# -- certificates ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Certificates:
    ca: Path
    fullchain: Path
    key: Path


def make_certificates(folder: Path) -> Certificates:
    """A throwaway CA and a certificate it signs for localhost (EC P-256, one day)."""
    folder.mkdir()
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, capture_output=True, check=True, timeout=60)

    openssl(
        *("req", "-x509", *ec, "-days", "1", "-subj", "/CN=Voorgesprek test CA"),
        *("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        *("-keyout", "ca.key", "-out", "ca.pem"),
    )
    openssl("req", *ec, "-subj", "/CN=localhost", "-keyout", "privkey.pem", "-out", "server.csr")
    (folder / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        encoding="utf-8",
    )
    openssl(
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"),
        *("-days", "1", "-extfile", "server.ext", "-out", "fullchain.pem"),
    )
    return Certificates(folder / "ca.pem", folder / "fullchain.pem", folder / "privkey.pem")


# -- the nginx example, made runnable -------------------------------------------------------------
@dataclass(frozen=True)
class Ports:
    http: int  # stands in for 80
    https: int  # stands in for 443
    web: int  # WEB_PORT (the example's 8080)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def render_site(text: str, ports: Ports, certs: Certificates, webroot: Path) -> str:
    """The example with exactly these substitutions; each must match as often as written."""
    v6 = ipv6_loopback()
    substitutions: list[tuple[str, str, int]] = [
        # README 4's sed: the practice's own name (here the certificate's).
        (f"server_name {EXAMPLE_NAME};", "server_name localhost;", 2),
        # certbot's files -> the throwaway ones.
        (
            f"ssl_certificate /etc/letsencrypt/live/{EXAMPLE_NAME}/fullchain.pem;",
            f"ssl_certificate {certs.fullchain};",
            1,
        ),
        (
            f"ssl_certificate_key /etc/letsencrypt/live/{EXAMPLE_NAME}/privkey.pem;",
            f"ssl_certificate_key {certs.key};",
            1,
        ),
        # 80 and 443 on all addresses -> free unprivileged ports on the loopback only.
        ("listen 80;", f"listen 127.0.0.1:{ports.http};", 1),
        ("listen [::]:80;", f"listen [::1]:{ports.http};" if v6 else "", 1),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{ports.https} ssl http2;", 1),
        ("listen [::]:443 ssl http2;", f"listen [::1]:{ports.https} ssl http2;" if v6 else "", 1),
        # certbot's webroot (renewals with --webroot).
        ("root /var/www/certbot;", f"root {webroot};", 1),
        # The web app's WEB_PORT (/ and /healthz).
        ("proxy_pass http://127.0.0.1:8080;", f"proxy_pass http://127.0.0.1:{ports.web};", 2),
    ]
    for old, new, count in substitutions:
        assert text.count(old) == count, f"the nginx example changed: {old!r} is there {text.count(old)}x"
        text = text.replace(old, new)
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert EXAMPLE_NAME not in code and not re.search(r"\blisten (80|443)\b|:8080;", code), code
    return text


def nginx_conf(prefix: Path, site: Path) -> str:
    """A minimal top-level nginx.conf (what /etc/nginx/nginx.conf gives a packaged nginx)."""
    lines = [
        f"pid {prefix}/nginx.pid;",
        f"error_log {prefix}/error.log notice;",
        "worker_processes 1;",
        "events { worker_connections 64; }",
        "http {",
        f"    access_log {prefix}/access.log;",
        "    default_type application/octet-stream;",  # no mime.types needed: the app sets its types
        *(f"    {kind}_temp_path {prefix}/{kind};" for kind in TEMP_PATHS),
        f"    include {site};",
        "}",
    ]
    if os.geteuid() == 0:
        # As root (a container) the workers would switch to nobody, who cannot read pytest's
        # temporary folder (mode 0700): they stay this user here.
        lines.insert(0, f"user {pwd.getpwuid(0).pw_name};")
    return "\n".join(lines) + "\n"


# -- a small client: TLS trusting only the throwaway CA, from a chosen source address -------------
@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    tls: str | None = None
    alpn: str | None = None

    def json(self) -> object:
        return json.loads(self.body)


def _exchange(
    sock: socket.socket, method: str, path: str, host: str, headers: dict[str, str], body: bytes
) -> tuple[int, http.client.HTTPMessage, bytes]:
    head = {"Host": host, "Connection": "close", **headers}
    if body or method == "POST":
        head["Content-Length"] = str(len(body))
    request = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
    sock.sendall(request.encode("latin-1") + body)
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.headers, response.read()


def tls_context(ca: Path | None, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(alpn or ["http/1.1"])
    return context


def https(
    port: int,
    path: str,
    ca: Path,
    *,
    method: str = "GET",
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Answer:
    raw = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    with tls_context(ca).wrap_socket(raw, server_hostname="localhost") as sock:
        status, head, data = _exchange(sock, method, path, f"localhost:{port}", headers or {}, body)
        return Answer(status, head, data, sock.version(), sock.selected_alpn_protocol())


def plain_http(port: int, path: str) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        return Answer(*_exchange(sock, "GET", path, f"localhost:{port}", {}, b""))


def handshake(port: int, context: ssl.SSLContext) -> tuple[str | None, str | None]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=15) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        return sock.version(), sock.selected_alpn_protocol()


def can_bind(address: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


# -- processes ------------------------------------------------------------------------------------
@dataclass
class Proc:
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
        return f"--- {self.name} ---\n" + "\n".join(text.splitlines()[-lines:])


async def start(name: str, argv: list[str], env: dict[str, str], cwd: Path, logs: Path) -> Proc:
    log = logs / f"{name}.log"
    with log.open("ab") as fh:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=cwd, stdout=fh, stderr=fh, start_new_session=True
        )
    return Proc(name, proc, log)


async def stop_all(procs: list[Proc]) -> dict[str, int]:
    """SIGTERM to each, then SIGKILL to the process group of whatever is left after 15 s."""
    for p in procs:
        if p.proc.returncode is None:
            p.proc.terminate()
    codes: dict[str, int] = {}
    for p in procs:
        try:
            codes[p.name] = await asyncio.wait_for(p.proc.wait(), 15)
        except TimeoutError:
            codes[p.name] = -999
        # nginx's worker (and anything else started in the group) goes with its leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.proc.pid, signal.SIGKILL)
        if p.proc.returncode is None:
            await p.proc.wait()
    return codes


def unit_argv(name: str) -> list[str]:
    (line,) = values(DEPLOY / f"voorgesprek-{name}.service", "Service", "ExecStart")
    argv = shlex.split(line)
    assert argv[0] == UNIT_PYTHON, argv
    return [sys.executable, *argv[1:]]


def unit_env(name: str, state: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in values(DEPLOY / f"voorgesprek-{name}.service", "Service", "Environment"):
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            env[key] = value.replace(STATE, str(state))
    return env


async def poll(what: Callable[[], Answer], until: Callable[[Answer], bool], procs: list[Proc]) -> Answer:
    """Ask again every half second until the answer is right; fail with the logs on timeout."""
    deadline = time.monotonic() + READY_WITHIN
    last: Answer | str = "no answer"
    while True:
        for p in procs:
            assert p.proc.returncode is None, f"{p.name} exited with {p.proc.returncode}\n{p.tail()}"
        try:
            answer = await asyncio.to_thread(what)
            if until(answer):
                return answer
            last = answer
        except (OSError, http.client.HTTPException) as exc:  # not listening yet
            last = repr(exc)
        if time.monotonic() > deadline:
            logs = "\n".join(p.tail() for p in procs)
            raise AssertionError(f"not ready in {READY_WITHIN:g} s: {last}\n{logs}")
        await asyncio.sleep(0.5)


def csrf_of(page: bytes) -> str:
    found = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1).decode()


def cookie_of(answer: Answer, name: str) -> tuple[str, str]:
    """The value of a Set-Cookie and its attributes."""
    for header in answer.headers.get_all("Set-Cookie") or []:
        if header.startswith(f"{name}="):
            value, _, attributes = header.partition(";")
            return value.split("=", 1)[1], attributes
    raise AssertionError(f"no cookie {name}: {answer.headers}")


# ================================================================================================
async def test_the_bot_and_the_web_app_run_behind_nginx_over_tls(
    tmp_path: Path, fake: tuple[FakeTelegram, FakeBotAPIServer]
) -> None:
    nginx = _nginx()
    if nginx is None:
        pytest.skip("nginx is not installed (bash tests/run.sh installs it): the TLS route is not rehearsed")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (bash tests/run.sh installs it): no throwaway certificate")
    began = time.monotonic()
    core, server = fake
    certs = await asyncio.to_thread(make_certificates, tmp_path / "tls")
    ports = Ports(http=free_port(), https=free_port(), web=free_port())
    assert len({ports.http, ports.https, ports.web}) == 3

    # nginx: the site as README 4 puts it in sites-available, a minimal nginx.conf around it.
    prefix = tmp_path / "nginx"
    webroot = tmp_path / "certbot"
    (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
    (webroot / ".well-known" / "acme-challenge" / "token-1").write_text("token-1.thumbprint")
    prefix.mkdir()
    site = prefix / "voorgesprek.conf"
    site.write_text(render_site(NGINX.read_text(encoding="utf-8"), ports, certs, webroot), encoding="utf-8")
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, site), encoding="utf-8")
    # -e: the error log before the configuration is read (else the packaged /var/log/nginx one).
    nginx_argv = [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    checked = await asyncio.to_thread(
        subprocess.run, [*nginx_argv, "-t", "-q"], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0 and "warn" not in checked.stderr, checked.stderr

    # The services: the units' commands and environment, in a stand-in for /var/lib/voorgesprek,
    # with README 3B's /etc/voorgesprek/env (Telegram replaced by the fake). DATABASE_PATH is the
    # default ./data/voorgesprek.sqlite3 in the working folder, as on the server.
    state = tmp_path / "var-lib-voorgesprek"
    state.mkdir()
    env_file = {
        "BOT_TOKEN": core.token,
        "BOT_USERNAME": core.username,
        "TIMEZONE": "Europe/Amsterdam",
        "WEB_BASE_URL": f"https://localhost:{ports.https}",
        "TRUSTED_PROXIES": "127.0.0.1",
        "TELEGRAM_API_URL": server.base_url,
        "WEB_PORT": str(ports.web),  # the example's 8080 may be taken on this machine
    }
    base = {k: v for k, v in os.environ.items() if k not in SETTINGS}  # no stray settings from here
    envs = {name: {**base, **unit_env(name, state), **env_file} for name in ("bot", "web")}
    database = state / "data" / "voorgesprek.sqlite3"

    procs: list[Proc] = []
    codes: dict[str, int] = {}
    try:
        # systemctl enable --now voorgesprek-bot voorgesprek-web: both at once, then nginx.
        for name in ("bot", "web"):
            procs.append(await start(name, unit_argv(name), envs[name], state, tmp_path))
        procs.append(
            await start("nginx", [*nginx_argv, "-g", "daemon off;"], os.environ.copy(), prefix, tmp_path)
        )

        # 1. /healthz over real TLS answers 200 "ok" once the scheduler has ticked.
        health = await poll(
            lambda: https(ports.https, "/healthz", certs.ca),
            lambda a: a.status == 200,
            procs,
        )
        report = health.json()
        assert isinstance(report, dict) and report["status"] == "ok", report
        assert {name: check["status"] for name, check in report["checks"].items()} == {
            "database": "ok",
            "migrations": "ok",
            "scheduler": "ok",
            "outbox": "ok",
            "telegram": "ok",
        }, report
        assert health.tls in ("TLSv1.2", "TLSv1.3") and health.headers["Content-Type"].startswith(
            "application/json"
        )
        assert health.headers["Server"] == "nginx", "server_tokens off: no version"
        ready_s = time.monotonic() - began
        assert database.exists(), "the default DATABASE_PATH in the units' working folder"

        # The command the README uses for monitoring, with the services' settings.
        code, out, err = await run_cli("health", "--json", cwd=state, env=envs["bot"])
        assert code == 0, out + err
        cli_report = json.loads(out)
        assert cli_report["status"] == "ok" and cli_report["checks"]["scheduler"]["status"] == "ok", out
        print(f"\nready (both services and nginx, first tick) after {ready_s:.1f} s")
        print("GET https://localhost/healthz:", json.dumps(report, sort_keys=True))
        print("python -m bot health --json:", json.dumps(cli_report, sort_keys=True))

        # 2. The certificate is checked for real: without the throwaway CA it is refused.
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.to_thread(handshake, ports.https, tls_context(None))
        # HTTP/2 is offered (the example's "listen 443 ssl http2"), TLS 1.2 at least.
        version, alpn = await asyncio.to_thread(
            handshake, ports.https, tls_context(certs.ca, ["h2", "http/1.1"])
        )
        assert alpn == "h2" and version in ("TLSv1.2", "TLSv1.3")

        # 3. Port 80: a 301 to https for everything, except certbot's webroot.
        moved = await asyncio.to_thread(plain_http, ports.http, "/login?x=1")
        assert moved.status == 301 and moved.headers["Location"] == "https://localhost/login?x=1"
        challenge = await asyncio.to_thread(plain_http, ports.http, "/.well-known/acme-challenge/token-1")
        assert challenge.status == 200 and challenge.body == b"token-1.thumbprint"

        # 4. The log-in page over https: the app's security headers pass nginx unchanged, HSTS included
        # (WEB_BASE_URL is https), and its cookie is Secure.
        page = await asyncio.to_thread(https, ports.https, "/login", certs.ca, source=OUTSIDER)
        assert page.status == 200, page.body[:300]
        assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["Referrer-Policy"] == "same-origin"
        assert page.headers["Cache-Control"] == "no-store"
        pre, attributes = cookie_of(page, "vg_pre")
        assert {"secure", "httponly", "samesite=strict"} <= {a.strip().lower() for a in attributes.split(";")}

        # 5. A failed log-in through nginx from OUTSIDER, who also claims an address of its own in
        # X-Forwarded-For: the audit row has the address nginx saw (the right-most hop nginx
        # added, after the trusted proxy 127.0.0.1), not the made-up one.
        if not can_bind(OUTSIDER):
            pytest.fail(f"cannot use {OUTSIDER} as a source address on this machine")
        form = urlencode(
            {"csrf": csrf_of(page.body), "username": "nobody-here", "password": "wrong password"}
        )
        failed = await asyncio.to_thread(
            https,
            ports.https,
            "/login",
            certs.ca,
            method="POST",
            source=OUTSIDER,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"vg_pre={pre}",
                "Origin": f"https://localhost:{ports.https}",
                "X-Forwarded-For": MADE_UP,
            },
            body=form.encode(),
        )
        assert failed.status == 401, failed.body[:300]
        with sqlite3.connect(database) as db:
            rows = db.execute(
                "SELECT user_name, client_address FROM audit_log WHERE event = 'login_failed'"
            ).fetchall()
        assert rows == [("unknown", OUTSIDER)], rows

        # 6. /healthz is for the allowed addresses only: nginx itself answers 403 to the others.
        denied = await asyncio.to_thread(https, ports.https, "/healthz", certs.ca, source=OUTSIDER)
        assert denied.status == 403 and b'"status"' not in denied.body
    finally:
        codes = await stop_all(procs)
        # The bot's last long poll is still open in the fake (its handler waits out the poll's
        # timeout, ~20 s at the fixture's teardown): an update ends it now.
        core.user_sends(1, "/start")
    # Stopped as systemd stops them (SIGTERM): the bot cleanly; the web app by the signal itself
    # (see tests/test_deploy.py); nginx's fast shutdown.
    assert codes["bot"] == 0, procs[0].tail()
    assert codes["web"] in (0, -signal.SIGTERM), procs[1].tail()
    assert codes["nginx"] == 0, procs[2].tail()
    print(f"whole rehearsal {time.monotonic() - began:.1f} s")
