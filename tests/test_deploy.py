"""The deploy kit in ``deploy/``: the Dockerfile, compose.yaml, the systemd units, the nginx example.

Docker is usually not there to build the image (no daemon here or in CI), so the Dockerfile's own
steps run without it: its build context is made with ``.dockerignore``'s rules, its builder
stage's COPY and RUN lines run as written in a temporary folder that stands in for ``/`` (the
same pip commands: the wheel, ``requirements.lock`` with ``--require-hashes``, the wheel with
``--no-deps``, a fresh virtualenv without this machine's packages), and then the runtime stage's
CMD and HEALTHCHECK run with its ENV, against the fake Bot API, as compose.yaml's web command and
health check do, and the backup unit's command. The apt packages are checked with ``apt-cache``,
the units with ``systemd-analyze verify`` and ``security``, the nginx example with ``nginx -t``,
each when the tool exists (skipped with the reason otherwise); a real ``docker build`` runs only
where a Docker daemon answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import canonicalize_name
from pydantic import SecretStr

from bot.config import Settings
from bot.testing.fake_telegram import FakeBotAPIServer, FakeTelegram
from tests.test_lock import locked

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
NGINX = DEPLOY / "nginx.conf.example"
UNITS = sorted(DEPLOY.glob("*.service")) + sorted(DEPLOY.glob("*.timer"))
SETTINGS = {name.upper() for name in Settings.model_fields}
SECRETS = {  # the settings typed SecretStr (or SecretStr | None)
    name.upper()
    for name, f in Settings.model_fields.items()
    if SecretStr in getattr(f.annotation, "__args__", (f.annotation,))
}
# Environment variables the deploy files may set that are not bot settings, each with its reason.
NOT_SETTINGS = {
    "PATH": "the virtualenv's bin first",
    "HOME": "the data folder (nothing else is writable)",
    "PYTHONUNBUFFERED": "log lines leave at once",
    "PYTHONDONTWRITEBYTECODE": "the code folder is read-only",
    "PIP_NO_CACHE_DIR": "builder stage only",
    "PIP_DISABLE_PIP_VERSION_CHECK": "builder stage only",
    "VOORGESPREK_BACKUP_PASSPHRASE": "backup --passphrase-env; kept apart from the settings",
    "PYTHON_IMAGE": "the Dockerfile's build argument: its base image",
}
PASSPHRASE_ENV = "VOORGESPREK_BACKUP_PASSPHRASE"
# The stand-ins for the image's (and the units') absolute folders, under a temporary root.
MAPPED = (
    "/opt/voorgesprek",
    "/dist",
    "/src",
    "/data",
    "/var/lib/voorgesprek-backups",
    "/var/lib/voorgesprek",
)
MAPPED_RE = re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, MAPPED)) + r")(?=[/\s\"':]|$)")


# -- the Dockerfile, read as Docker reads it ----------------------------------------------------
@dataclass
class Step:
    keyword: str
    args: str


@dataclass
class Stage:
    name: str
    base: str
    steps: list[Step] = field(default_factory=list)

    def all(self, keyword: str) -> list[Step]:
        return [s for s in self.steps if s.keyword == keyword]

    def env(self, start: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(start or {})
        for step in self.all("ENV"):
            for pair in shlex.split(step.args):
                key, _, value = pair.partition("=")
                env[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m[1], ""), value)
        return env

    def exec_form(self, keyword: str) -> list[str]:
        (step,) = self.all(keyword)
        args = step.args
        if keyword == "HEALTHCHECK":
            args = args.split("CMD", 1)[1]
        parsed = json.loads(args)
        assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed)
        return parsed


def read_dockerfile(path: Path = DOCKERFILE) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), re.sub(r"\s+", " ", rest.strip())
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args[m[1]], base)
            stages.append(Stage(name.strip(), base.strip()))
        else:
            stages[-1].steps.append(Step(keyword, rest))
    return stages


def stage(name: str) -> Stage:
    (found,) = (s for s in read_dockerfile() if s.name == name)
    return found


# -- .dockerignore, as Docker matches it (moby/patternmatcher) -----------------------------------
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _pattern_regex(os.path.normpath(line.lstrip("!")).lstrip("/"))))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """The last rule matching the path or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, regex in rules:
        if any(regex.match(c) for c in candidates):
            included = negated
    return included


def build_context() -> list[str]:
    rules = dockerignore()
    files = []
    for folder, dirs, names in os.walk(ROOT):
        rel = Path(folder).relative_to(ROOT).as_posix()
        dirs[:] = [d for d in dirs if not (rel == "." and d == ".git")]
        for name in names:
            path = name if rel == "." else f"{rel}/{name}"
            if in_context(path, rules):
                files.append(path)
    return sorted(files)


def copied_sources(steps: list[Step]) -> list[str]:
    """The context paths the COPY steps name (not those from another stage)."""
    sources = []
    for step in steps:
        words = step.args.split()
        if words[0].startswith("--from="):
            continue
        assert not any(w.startswith("--") for w in words), step
        sources += [w.rstrip("/") for w in words[:-1]]
    return sources


# -- other files ----------------------------------------------------------------------------------
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit: section -> (key, value) in order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key.strip(), value.strip()))
    return sections


def values(path: Path, section: str, key: str) -> list[str]:
    return [v for k, v in unit(path).get(section, []) if k == key]


def systemd_unescape(command: str) -> str:
    """``$$`` and ``%%`` as systemd reads them; any other specifier would be a surprise here."""
    assert not re.search(r"%[^%]", command.replace("%%", "")), command
    return command.replace("$$", "$").replace("%%", "%")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ================================================================================================
# Fast checks: the files say what the README promises.
# ================================================================================================
def test_the_dockerfile_builds_a_wheel_then_a_slim_runtime_with_the_locked_dependencies() -> None:
    builder, runtime = read_dockerfile()
    assert (builder.name, runtime.name) == ("builder", "runtime")
    assert builder.base == runtime.base == "python:3.11-slim-bookworm"
    run = " && ".join(s.args for s in builder.all("RUN"))
    assert "pip wheel --no-deps --wheel-dir /dist ." in run
    locked_install = re.search(r"pip install (.*)-r requirements\.lock", run)
    assert locked_install and "--require-hashes" in locked_install[1]
    assert re.search(r"pip install --no-deps .*/dist/voorgesprek-\*\.whl", run)
    # The runtime stage takes nothing from the build context: only the builder's virtualenv.
    (copy,) = runtime.all("COPY")
    assert copy.args == "--from=builder /opt/voorgesprek /opt/voorgesprek"


def test_the_image_runs_as_a_user_with_its_data_in_the_volume_and_checks_its_health() -> None:
    runtime = stage("runtime")
    (user,) = runtime.all("USER")
    assert user.args.split(":")[0] not in ("root", "0")
    assert [json.loads(v.args) for v in runtime.all("VOLUME")] == [["/data"]]
    env = runtime.env()
    assert env["DATABASE_PATH"].startswith("/data/") and env["VOICE_CACHE_DIR"].startswith("/data/")
    assert env["HOME"] == "/data"
    assert env["PDF_FONT"] == str(Settings.model_fields["pdf_font"].default)
    assert env["PATH"].startswith("/opt/voorgesprek/bin:")
    assert runtime.exec_form("CMD") == ["python", "-m", "bot", "run"]
    assert runtime.exec_form("HEALTHCHECK") == ["python", "-m", "bot", "health"]
    (check,) = runtime.all("HEALTHCHECK")
    options = dict(re.findall(r"--([\w-]+)=(\S+)", check.args.split("CMD")[0]))
    # The first scheduler tick comes within a minute of the start.
    assert set(options) >= {"interval", "timeout", "start-period", "retries"}


def test_no_secret_is_baked_into_the_image() -> None:
    assert {"BOT_TOKEN", "WEBHOOK_SECRET"} == SECRETS
    for st in read_dockerfile():
        named = set(st.env()) | {s.args.split("=")[0] for s in st.all("ARG")}
        assert not named & (SECRETS | {PASSPHRASE_ENV}), st.name
    context = build_context()
    for private in (
        ".env",
        "deploy/.env",
        "bot/.env",
        "content/nl/.env",
        "bot/x.sqlite3",
        ".git/config",
        "data/voorgesprek.sqlite3",
        "x.sqlite3-wal",
        "tests/test_deploy.py",
    ):
        assert not in_context(private, dockerignore()), private
    assert not [f for f in context if f.endswith((".env", ".sqlite3")) or "/." in f or f.startswith(".")]


def test_the_build_context_holds_what_the_builder_copies_and_nothing_else() -> None:
    context = build_context()
    sources = copied_sources(stage("builder").all("COPY"))
    for source in sources:
        assert (ROOT / source).exists(), source
        assert any(f == source or f.startswith(source + "/") for f in context), f"{source} is ignored"
    stray = [f for f in context if not any(f == s or f.startswith(s + "/") for s in sources)]
    assert not stray, stray
    assert "bot/storage/migrations/0001_initial.sql" in context and "content/nl/messages.yaml" in context
    assert not [f for f in context if "__pycache__" in f or f.endswith(".pyc")]
    # The matcher itself: a later rule wins, and a rule on a folder covers its files.
    rules = [(False, _pattern_regex("*")), (True, _pattern_regex("bot")), (False, _pattern_regex("**/x"))]
    assert in_context("bot/a.py", rules) and not in_context("tests/a.py", rules)
    assert not in_context("bot/x/a.py", rules)


def test_compose_runs_both_services_on_one_volume_restarting_with_health_checks() -> None:
    data = compose()
    services = data["services"]
    assert set(services) == {"bot", "web"}
    assert services["bot"]["command"] == stage("runtime").exec_form("CMD")
    assert services["web"]["command"] == ["python", "-m", "bot", "web"]
    assert "data" in data["volumes"]
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["env_file"] == ".env", name
        assert service["volumes"] == ["data:/data"], name
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["cap_drop"] == ["ALL"], name
        assert (
            COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]
        ).resolve() == DOCKERFILE
        assert service["environment"]["DATABASE_PATH"] == stage("runtime").env()["DATABASE_PATH"]
        assert set(service["healthcheck"]) >= {"test", "interval", "timeout", "start_period", "retries"}
    assert services["bot"]["healthcheck"]["test"] == ["CMD", "python", "-m", "bot", "health"]
    web_check = " ".join(services["web"]["healthcheck"]["test"])
    port = services["web"]["environment"]["WEB_PORT"]
    assert f"http://127.0.0.1:{port}/healthz" in web_check and "curl" not in web_check
    # Reachable from the host only (nginx in front), never on all interfaces.
    assert services["web"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert "ports" not in services["bot"]
    # The proxy believed is the gateway of the compose network, the way nginx on the host comes in.
    (network,) = data["networks"]["default"]["ipam"]["config"]
    proxy = ip_address(services["web"]["environment"]["TRUSTED_PROXIES"])
    assert proxy == ip_address(network["gateway"]) and proxy in ip_network(network["subnet"])


def _deploy_texts() -> dict[str, str]:
    paths = [DOCKERFILE, COMPOSE, NGINX, *UNITS, ROOT / ".dockerignore"]
    return {p.name: p.read_text(encoding="utf-8") for p in paths}


def test_every_variable_the_deploy_files_set_or_mention_is_a_setting() -> None:
    named: dict[str, set[str]] = {}

    def add(where: str, names: set[str]) -> None:
        for name in names:
            named.setdefault(name, set()).add(where)

    for st in read_dockerfile():
        add(f"Dockerfile {st.name}", set(st.env()))
    for name, service in compose()["services"].items():
        add(f"compose {name}", set(service["environment"]))
    for path in UNITS:
        for value in values(path, "Service", "Environment"):
            add(path.name, {pair.split("=")[0] for pair in shlex.split(value)})
    # Also every NAME=value in the comments and commands (the nginx example, the units' notes).
    for name, text in _deploy_texts().items():
        add(name, set(re.findall(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)=", text)))
    unknown = {name: where for name, where in named.items() if name not in SETTINGS | set(NOT_SETTINGS)}
    assert not unknown, unknown
    assert not set(NOT_SETTINGS) & SETTINGS


def test_the_runtime_packages_exist_in_debian_and_provide_what_the_bot_calls() -> None:
    words = " ".join(s.args for s in stage("runtime").all("RUN")).split("apt-get install")[1].split("&&")[0]
    packages = [w for w in words.split() if not w.startswith("-")]
    assert packages == ["espeak-ng", "opus-tools", "fonts-dejavu-core"]
    if shutil.which("apt-cache") is None:
        pytest.skip("no apt-cache on this machine: the package names are not checked")
    for package in packages:
        shown = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True, check=False)
        if shown.returncode != 0 and "No packages found" in shown.stderr + shown.stdout:
            pytest.fail(f"apt-cache knows no package {package}")
        assert shown.returncode == 0, f"apt-cache show {package}: {shown.stderr} (apt-get update?)"
    # The programs and the font the bot uses come from exactly these packages (where installed).
    for needed in ("espeak-ng", "opusenc", stage("runtime").env()["PDF_FONT"]):
        path = needed if needed.startswith("/") else shutil.which(needed)
        if path is None or shutil.which("dpkg") is None:
            continue
        owner = subprocess.run(
            ["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True, check=False
        )
        if owner.returncode == 0:
            assert owner.stdout.split(":")[0] in packages, (needed, owner.stdout)


def test_the_units_are_hardened_and_run_what_the_image_runs() -> None:
    services = {p.stem: p for p in UNITS if p.suffix == ".service"}
    assert set(services) == {"voorgesprek-bot", "voorgesprek-web", "voorgesprek-backup"}
    hardening = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "User": "voorgesprek",
    }
    for path in services.values():
        settings = dict(unit(path)["Service"])
        for key, want in hardening.items():
            assert settings.get(key) == want, (path.name, key)
        assert "@system-service" in values(path, "Service", "SystemCallFilter"), path.name
        assert settings["RestrictAddressFamilies"].split()[0] == "AF_UNIX", path.name
        assert re.fullmatch(r"\d+[MG]", settings["MemoryMax"]), path.name
        assert "voorgesprek" in settings["StateDirectory"].split(), path.name
        assert "/etc/voorgesprek/env" in values(path, "Service", "EnvironmentFile"), path.name
    python = "/opt/voorgesprek/bin/python"
    for name, command in (
        ("bot", stage("runtime").exec_form("CMD")),
        ("web", compose()["services"]["web"]["command"]),
    ):
        path = services[f"voorgesprek-{name}"]
        assert values(path, "Service", "ExecStart") == [shlex.join([python, *command[1:]])]
        assert values(path, "Service", "Restart") == ["on-failure"]
        assert values(path, "Install", "WantedBy") == ["multi-user.target"]
    backup = services["voorgesprek-backup"]
    assert "/etc/voorgesprek/backup.env" in values(backup, "Service", "EnvironmentFile")
    assert f"--passphrase-env {PASSPHRASE_ENV}" in values(backup, "Service", "ExecStart")[0]
    timer = DEPLOY / "voorgesprek-backup.timer"
    assert values(timer, "Timer", "Unit") == ["voorgesprek-backup.service"]
    assert values(timer, "Timer", "Persistent") == ["true"] and values(timer, "Timer", "OnCalendar")


@pytest.fixture
def units_here(tmp_path: Path) -> Path:
    """The units with /opt/voorgesprek pointing at a stand-in whose python exists (verify checks)."""
    (tmp_path / "opt" / "voorgesprek" / "bin").mkdir(parents=True)
    (tmp_path / "opt" / "voorgesprek" / "bin" / "python").symlink_to(sys.executable)
    folder = tmp_path / "units"
    folder.mkdir()
    for path in UNITS:
        text = path.read_text(encoding="utf-8").replace(
            "/opt/voorgesprek", str(tmp_path / "opt" / "voorgesprek")
        )
        (folder / path.name).write_text(text, encoding="utf-8")
    return folder


def _analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


def test_the_units_pass_systemd_analyze(units_here: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the units are not verified")
    names = sorted(p.name for p in units_here.iterdir())
    done = _analyze("verify", "--man=no", *names, cwd=units_here)
    # verify exits 0 on most mistakes and only prints them: any line at all is a finding.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr
    broken = units_here / "voorgesprek-web.service"
    broken.write_text(broken.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    assert "ProtectSytem" in _analyze("verify", "--man=no", broken.name, cwd=units_here).stderr
    broken.write_text(broken.read_text().replace("ProtectSytem=strict", "ProtectSystem=strict"))
    for name in (n for n in names if n.endswith(".service")):
        review = _analyze("security", "--offline=yes", name, cwd=units_here)
        if "--offline" in review.stderr:
            pytest.skip("this systemd-analyze has no offline security review")
        level = re.search(r"Overall exposure level for \S+: ([\d.]+)", review.stdout)
        assert level, review.stdout[-500:] + review.stderr
        # systemd's scale: 0 safe ... 10 unsafe; below 2 is "OK"/"SAFE".
        assert float(level[1]) < 2.0, f"{name}: exposure {level[1]}"


TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def test_the_nginx_example_proxies_the_configured_ports_and_passes_nginx_t(tmp_path: Path) -> None:
    text = NGINX.read_text(encoding="utf-8")
    defaults = Settings(_env_file=None)
    assert f"proxy_pass http://127.0.0.1:{defaults.web_port};" in text
    assert f"location = {defaults.webhook_path} {{" in text
    assert f"proxy_pass http://127.0.0.1:{defaults.webhook_port};" in text
    assert "return 301 https://$host$request_uri;" in text
    assert re.search(r"^\s*ssl_protocols TLSv1\.2 TLSv1\.3;", text, re.M)
    assert re.search(r"^\s*client_max_body_size 1m;", text, re.M)
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in text and "X-Forwarded-Proto $scheme" in text
    # A proxy_set_header inside a location would drop the server-level ones there.
    for block in re.findall(r"location[^{]*\{(.*?)\n    \}", text, re.S):
        assert "proxy_set_header" not in block
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed: the example is not run through nginx -t")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no test certificate for nginx -t")
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    site = text.replace("/etc/letsencrypt/live/voorgesprek.example.nl/", f"{tmp_path}/")
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        "http {\n    access_log off;\n"
        # (a packaged nginx has these under /var/lib/nginx)
        + "".join(f"    {kind}_temp_path {tmp_path}/{kind};\n" for kind in TEMP_PATHS)
        + f"    include {tmp_path}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "warn" not in done.stderr, done.stderr


# ================================================================================================
# Slow: a real docker build where a daemon answers; else the Dockerfile's steps run without it.
# ================================================================================================
def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    info = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return info.returncode == 0


def test_the_image_builds_with_docker_and_reports_its_health() -> None:
    if not _docker_answers():
        pytest.skip("no Docker daemon here: the image is not built (its steps run without Docker below)")
    tag = "voorgesprek:test-deploy"
    build = subprocess.run(
        ["docker", "build", "-f", str(DOCKERFILE), "-t", tag, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    try:
        # No database in a fresh volume: unhealthy (exit 1), as documented, and as JSON.
        health = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--read-only",
                "--tmpfs",
                "/tmp",
                tag,
                "python",
                "-m",
                "bot",
                "health",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert health.returncode == 1, health.stderr
        assert json.loads(health.stdout)["checks"]["database"]["status"] == "fail"
        user = subprocess.run(
            ["docker", "run", "--rm", tag, "id", "-u"], capture_output=True, text=True, check=True
        )
        assert user.stdout.strip() != "0"
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


@dataclass
class Image:
    """The builder stage's result under ``root`` (which stands in for ``/``) and the runtime stage."""

    root: Path
    runtime: Stage

    def map(self, text: str) -> str:
        return MAPPED_RE.sub(lambda m: str(self.root) + m[1], text)

    @property
    def python(self) -> Path:
        return self.root / "opt" / "voorgesprek" / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """The runtime stage's ENV (folders mapped), nothing from this machine's Python."""
        base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        env = {k: self.map(v) for k, v in self.runtime.env(base).items()}
        return {**env, **extra}

    def argv(self, command: list[str]) -> list[str]:
        # "python" is found on the image's PATH: the virtualenv's.
        assert command[0] == "python"
        return [str(self.python), *command[1:]]


def _host_env() -> dict[str, str]:
    """What pip needs from this machine to reach an index (proxy, certificates, its config)."""
    keep = ("PIP_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(keep) or k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    }
    # "python" is the image's Python 3.11: this interpreter.
    shim = Path(sys.executable).parent
    env.update(PATH=f"{shim}{os.pathsep}/usr/local/bin:/usr/bin:/bin", LANG="C.UTF-8")
    return env


def run_builder(root: Path) -> Stage:
    """The builder stage's steps, as Docker runs them: COPY from the build context, RUN with sh."""
    builder = stage("builder")
    context = build_context()
    env = {**_host_env(), "HOME": str(root / "home")}
    image = Image(root, builder)
    cwd = root
    for step in builder.steps:
        if step.keyword == "ENV":
            env.update(builder.env())
        elif step.keyword == "WORKDIR":
            cwd = Path(image.map(step.args))
            cwd.mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY":
            *sources, dest = step.args.split()
            target = cwd / dest if not dest.startswith("/") else Path(image.map(dest))
            for source in sources:
                source = source.rstrip("/")
                for rel in (f for f in context if f == source or f.startswith(source + "/")):
                    into = target / (Path(rel).name if rel == source else Path(rel).relative_to(source))
                    into.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / rel, into)
        elif step.keyword == "RUN":
            command = image.map(step.args)
            done = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert done.returncode == 0, f"RUN {step.args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        else:
            raise AssertionError(f"the test does not know {step.keyword} in the builder stage")
    return stage("runtime")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    if sys.version_info[:2] != (3, 11):
        pytest.skip(f"the image has Python 3.11 and requirements.lock is for it; this is {sys.version}")
    if not sys.platform.startswith("linux"):
        pytest.skip("requirements.lock is for Linux x86_64")
    root = tmp_path_factory.mktemp("image")
    runtime = run_builder(root)
    (copy,) = runtime.all("COPY")
    _, source, dest = copy.args.split()
    assert source == dest  # the same folder in both stages: nothing to move under the one root
    (root / "data").mkdir()
    return Image(root, runtime)


def test_the_dockerfile_steps_give_a_virtualenv_with_exactly_the_lock_and_every_module_importing(
    image: Image,
) -> None:
    listed = subprocess.run(
        [str(image.python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
        env=image.env(),
    )
    installed: dict[str, str] = {
        canonicalize_name(p["name"]): p["version"] for p in json.loads(listed.stdout)
    }
    pins = locked()
    assert installed.pop("voorgesprek") == "0.1.0"
    installed.pop("pip")
    assert installed == pins
    # Every module of the installed bot imports with only these packages (a dependency that is
    # used but missing from pyproject.toml and the lock fails here, not at a practice).
    probe = (
        "import importlib, pkgutil, bot, scheduler\n"
        "bad = []\n"
        "for pkg in (bot, scheduler):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if m.name.endswith('__main__'):\n"
        "            continue\n"
        "        try:\n"
        "            importlib.import_module(m.name)\n"
        "        except Exception as exc:\n"
        "            bad.append(f'{m.name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(bad))\n"
        "raise SystemExit(1 if bad else 0)\n"
    )
    done = subprocess.run(
        [str(image.python), "-c", probe],
        capture_output=True,
        text=True,
        env=image.env(),
        cwd=image.root / "data",
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


async def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class Service:
    """A long-running command of the image (the bot, the web app) with its log in a file."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.argv, self.env, self.cwd, self.log = argv, env, cwd, log
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Service:
        with self.log.open("ab") as fh:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=self.cwd, stdout=fh, stderr=fh
            )
        return self

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.terminate()
        return await asyncio.wait_for(self.proc.wait(), 30)

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def rss_mib(self) -> float:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1]) / 1024  # type: ignore[index]

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=15) as answer:
        return json.loads(answer.read())


def _stale_backup(folder: Path) -> Path:
    """A backup file 30 days old, which the backup unit's clean-up must delete."""
    folder.mkdir(parents=True)
    old = folder / "voorgesprek-20000101T000000Z.vgb"
    old.write_bytes(b"an old backup")
    month_ago = (datetime.now(UTC) - timedelta(days=30)).timestamp()
    os.utime(old, (month_ago, month_ago))
    return old


def _listing(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(8)


def _memory_max_mib(path: Path) -> float:
    (value,) = values(path, "Service", "MemoryMax")
    return float(value[:-1]) * (1024 if value.endswith("G") else 1)


async def test_the_image_commands_run_report_health_and_back_up(
    image: Image, fake: tuple[FakeTelegram, FakeBotAPIServer], tmp_path: Path
) -> None:
    core, server = fake
    runtime = image.runtime
    services = compose()["services"]
    workdir = Path(image.map(runtime.all("WORKDIR")[-1].args))
    web_port = free_port()
    # What compose's env_file (deploy/.env) adds, pointed at the fake Bot API; the web app on a free
    # port of 127.0.0.1 here (the container's 0.0.0.0:8080 would be this machine's).
    dotenv = {
        "BOT_TOKEN": core.token,
        "BOT_USERNAME": core.username,
        "TELEGRAM_API_URL": server.base_url,
        "OUTBOX_INTERVAL_SECONDS": "1",
    }
    env = image.env(**dotenv)
    health = image.argv(runtime.exec_form("HEALTHCHECK"))
    assert Path(env["DATABASE_PATH"]).parent == image.root / "data"

    # A fresh volume: no database yet, so unhealthy (exit 1), and --json says why.
    code, out, _ = await _run([*health, "--json"], env, workdir)
    assert code == 1
    assert json.loads(out)["checks"]["database"] == {
        "status": "fail",
        "detail": f"no database at {env['DATABASE_PATH']}",
    }

    async with Service(image.argv(runtime.exec_form("CMD")), env, workdir, tmp_path / "bot.log") as bot:
        deadline = time.monotonic() + 90
        while True:
            code, out, err = await _run(health, env, workdir)
            if code == 0:
                break
            assert bot.proc is not None and bot.proc.returncode is None, bot.tail()
            assert time.monotonic() < deadline, out + err + bot.tail()
            await asyncio.sleep(1)
        assert out.splitlines()[-1] == "healthy" and "telegram" in out
        figure = bot.rss_mib()
        print(f"bot RSS after start: {figure:.0f} MiB")
        assert figure * 2 < _memory_max_mib(DEPLOY / "voorgesprek-bot.service"), figure

        web_env = {**env, **{k: image.map(str(v)) for k, v in services["web"]["environment"].items()}}
        web_env.update(WEB_HOST="127.0.0.1", WEB_PORT=str(web_port))
        check = services["web"]["healthcheck"]["test"]
        assert check[0] == "CMD"
        check_argv = [a.replace(":8080/", f":{web_port}/") for a in image.argv(check[1:])]
        async with Service(
            image.argv(services["web"]["command"]), web_env, workdir, tmp_path / "web.log"
        ) as web:
            deadline = time.monotonic() + 60
            while (await _run(check_argv, web_env, workdir))[0] != 0:
                assert web.proc is not None and web.proc.returncode is None, web.tail()
                assert time.monotonic() < deadline, web.tail()
                await asyncio.sleep(1)
            answer = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{web_port}/healthz")
            assert answer["status"] == "ok"
            # `python -m bot web` ends by the signal itself (no handler; nothing is lost: each
            # request's writes are one SQLite transaction). docker stop and systemd accept either.
            assert await web.stop() in (0, -signal.SIGTERM), web.tail()
        # The web app gone: its health check fails.
        assert (await _run(check_argv, web_env, workdir))[0] != 0

        # The backup unit's command while the bot runs (systemd's escapes undone, folders mapped).
        backups = Path(image.map("/var/lib/voorgesprek-backups"))
        old = _stale_backup(backups)
        unit_file = DEPLOY / "voorgesprek-backup.service"
        backup_env = {**env, PASSPHRASE_ENV: "een lange zin als wachtwoord"}
        for key in ("ExecStart", "ExecStartPost"):
            (line,) = values(unit_file, "Service", key)
            argv = [image.map(a) for a in shlex.split(systemd_unescape(line))]
            code, out, err = await _run(argv, backup_env, workdir)
            assert code == 0, f"{key}: {out}{err}"
        (made,) = _listing(backups)  # the stale one deleted by ExecStartPost
        assert made != old and _head(made) == b"VGBACKUP"  # encrypted
        assert await bot.stop() == 0, bot.tail()

    # A restore test, as the README asks for: into a fresh database, then healthy migrations.
    restored = {**backup_env, "DATABASE_PATH": str(tmp_path / "restored" / "voorgesprek.sqlite3")}
    code, out, err = await _run(
        image.argv(["python", "-m", "bot", "restore", str(made), "--passphrase-env", PASSPHRASE_ENV]),
        restored,
        workdir,
    )
    assert code == 0, out + err
    code, out, _ = await _run([*health, "--json"], restored, workdir)
    report = json.loads(out)["checks"]
    assert report["database"]["status"] == "ok" and report["migrations"]["status"] == "ok"


def test_readme_commands_name_the_deploy_files() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run it for a practice", 1)[1].split("\n## ", 1)[0]
    for path in [DOCKERFILE, COMPOSE, NGINX, *UNITS]:
        assert f"deploy/{path.name}" in section, path.name
    for command in (
        "python -m bot health",
        "bot backup",
        "bot restore",
        "docker compose -f deploy/compose.yaml",
    ):
        assert command in section, command
