"""A fake Telegram Bot API: the edge we cannot reach in tests.

One core (:class:`FakeTelegram`) holds the state and speaks the Bot API's methods. It is
used two ways:
- :class:`FakeBotAPIServer` serves it over real HTTP on 127.0.0.1 (``/bot<token>/<method>``,
  multipart or JSON bodies), for the end-to-end tests with the real ``python -m bot run``;
- :class:`FakeSession` plugs it into an aiogram ``Bot`` in-process, for dispatcher tests.

Like Telegram it rejects text over 4096 characters, callback_data over 64 bytes, empty
text and edits that change nothing; getUpdates long-polls and forgets updates below the
confirmed offset. Users are simulated with ``user_*`` methods; everything the bot sent is
recorded in ``sent`` and every call in ``calls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import web

TEXT_LIMIT = 4096
CALLBACK_LIMIT = 64
JSON_FIELDS = {"reply_markup", "allowed_updates", "commands", "entities", "link_preview_options"}


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass
class SentMessage:
    chat_id: int
    message_id: int
    text: str
    reply_markup: dict[str, Any] | None
    history: list[str] = field(default_factory=list)  # earlier texts after edits
    voice: bytes | None = None  # a voice note (sendVoice): its audio
    voice_file_id: str | None = None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        if not self.reply_markup:
            return []
        return [(b["text"], b["callback_data"]) for row in self.reply_markup["inline_keyboard"] for b in row]

    def as_message(self, bot_user: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "type": "private", "first_name": "Test"},
            "from": bot_user,
        }
        if self.voice is not None:
            data["voice"] = {
                "file_id": self.voice_file_id,
                "file_unique_id": self.voice_file_id,
                "duration": 1,
                "mime_type": "audio/ogg",
                "file_size": len(self.voice),
            }
        else:
            data["text"] = self.text
        if self.reply_markup:
            data["reply_markup"] = self.reply_markup
        return data


class FakeTelegram:
    def __init__(
        self,
        token: str = "123456:TEST-token-for-the-fake-api",
        username: str = "voorgesprek_test_bot",
        *,
        limits: bool = False,
        per_second: float = 30.0,
        per_chat_gap: float = 1.0,
        latency: float = 0.0,
    ) -> None:
        # Seconds each Bot API call takes before it is answered (a Dutch data centre: ~0.06).
        self.latency = latency
        # With limits on, sends above ~per_second in any one second, or faster than one per
        # per_chat_gap to a chat, get 429 with retry_after, as Telegram answers.
        self.limits = limits
        self.per_second = per_second
        self.per_chat_gap = per_chat_gap
        self._recent: list[float] = []
        self._last_to_chat: dict[int, float] = {}
        self.too_many = 0
        self.token = token
        self.bot_id = int(token.split(":")[0])
        self.username = username
        self.bot_user = {"id": self.bot_id, "is_bot": True, "first_name": "Voorgesprek", "username": username}
        self.pending: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[tuple[str, int, str]] = []
        self.sent: list[SentMessage] = []
        self.messages: dict[tuple[int, int], SentMessage] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.blocked: set[int] = set()
        # chat -> seconds: sends to it get 429 "retry after" that long (a burst Telegram holds back)
        self.held_back: dict[int, int] = {}
        self.files: dict[str, bytes] = {}  # file_id -> content (voice notes both ways)
        self._file_ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self.get_updates_calls = 0
        # Webhook mode: (url, secret) once the bot called setWebhook; updates are then POSTed there.
        self.webhook: tuple[str, str] | None = None
        self._pusher: asyncio.Task[None] | None = None
        self.webhook_answers: list[int] = []  # HTTP status of each POST
        # Optional failure injection: a function (method, params) -> ApiError | None.
        self.inject: Callable[[str, dict[str, Any]], ApiError | None] | None = None

    # -- simulated users -----------------------------------------------------------------
    def _message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": "Test", "language_code": "nl"}

    def _push(self, payload: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self.pending.append({"update_id": update_id, **payload})
        self._notify()
        return update_id

    def _notify(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(notify())

    def user_message(self, user_id: int, chat_type: str = "private", **content: Any) -> int:
        """A message from a user; ``content`` is e.g. text=..., sticker={...}, photo=[...]."""
        message = {
            "message_id": self._message_id(user_id),
            "date": int(time.time()),
            "chat": {
                "id": user_id if chat_type == "private" else -user_id,
                "type": chat_type,
                "first_name": "Test",
            },
            "from": self._user(user_id),
            **content,
        }
        if chat_type != "private":
            message["chat"]["title"] = "Groep"
        text = content.get("text")
        if isinstance(text, str) and text.startswith("/"):
            length = len(text.split(" ", 1)[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self._push({"message": message})

    def add_file(self, content: bytes) -> str:
        file_id = f"file{next(self._file_ids)}"
        self.files[file_id] = content
        return file_id

    def user_sends_voice(self, user_id: int, audio: bytes, duration: int) -> int:
        """A voice note from the user (its audio can be fetched with getFile + download)."""
        file_id = self.add_file(audio)
        voice = {
            "file_id": file_id,
            "file_unique_id": file_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(audio),
        }
        return self.user_message(user_id, voice=voice)

    def user_sends(self, user_id: int, text: str) -> int:
        return self.user_message(user_id, text=text)

    def user_edits(self, user_id: int, message_id: int, text: str) -> int:
        message = {
            "message_id": message_id,
            "date": int(time.time()) - 5,
            "edit_date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Test"},
            "from": self._user(user_id),
            "text": text,
        }
        return self._push({"edited_message": message})

    def user_taps(
        self, user_id: int, message: SentMessage, label: str | None = None, *, data: str | None = None
    ) -> int:
        """Tap a button of a message the bot sent, by (part of) its label or raw data."""
        if data is None:
            matches = [
                d for text, d in message.buttons if label is not None and label.casefold() in text.casefold()
            ]
            if not matches:
                raise AssertionError(f"no button {label!r} in {message.buttons}")
            data = matches[0]
        query = {
            "id": str(next(self._callback_ids)),
            "from": self._user(user_id),
            "chat_instance": f"ci{user_id}",
            "message": message.as_message(self.bot_user),
            "data": data,
        }
        return self._push({"callback_query": query})

    # -- looking at what the bot did -------------------------------------------------
    def to_chat(self, chat_id: int) -> list[SentMessage]:
        """Text messages to a chat (voice notes: :meth:`voices_to`)."""
        return [m for m in self.sent if m.chat_id == chat_id and m.voice is None]

    def voices_to(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id and m.voice is not None]

    def last_to(self, chat_id: int) -> SentMessage:
        messages = self.to_chat(chat_id)
        if not messages:
            raise AssertionError(f"nothing sent to chat {chat_id}")
        return messages[-1]

    def last_question(self, chat_id: int) -> SentMessage:
        for message in reversed(self.to_chat(chat_id)):
            if message.reply_markup:
                return message
        raise AssertionError(f"no message with buttons in chat {chat_id}")

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError("timed out waiting for the bot")
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))

    async def wait_sent(self, chat_id: int, count: int, timeout: float = 15.0) -> list[SentMessage]:
        """Wait until at least ``count`` messages went to the chat in total."""
        await self.wait_for(lambda: len(self.to_chat(chat_id)) >= count, timeout)
        return self.to_chat(chat_id)

    # -- the Bot API --------------------------------------------------------------------
    async def call(self, method: str, params: dict[str, Any]) -> Any:
        method = method.lower()
        if self.latency:
            await asyncio.sleep(self.latency)
        params = {k: _decode(k, v) for k, v in params.items() if v is not None}
        self.calls.append((method, params))
        try:
            if self.inject is not None:
                error = self.inject(method, params)
                if error is not None:
                    raise error
            handler = getattr(self, f"api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(params)
        except ApiError as exc:
            if method != "getupdates":
                self.errors.append((method, exc.code, exc.description))
            raise
        finally:
            self._notify()
        return result

    async def api_getme(self, params: dict[str, Any]) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def api_deletewebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    async def api_setwebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = (str(params["url"]), str(params.get("secret_token", "")))
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.get_running_loop().create_task(self._push_to_webhook())
        return True

    async def _push_to_webhook(self) -> None:
        """Like Telegram: POST each pending update in order; drop it on 200, else try again later."""
        import aiohttp

        async with aiohttp.ClientSession() as session:
            while self.webhook is not None:
                if not self.pending:
                    async with self._changed:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._changed.wait(), timeout=0.2)
                    continue
                url, secret = self.webhook
                update = self.pending[0]
                try:
                    async with session.post(
                        url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
                    ) as response:
                        self.webhook_answers.append(response.status)
                        if response.status == 200:
                            self.pending.remove(update)
                            continue
                except aiohttp.ClientError:
                    pass  # the bot is down or restarting
                await asyncio.sleep(0.2)

    async def stop_webhook(self) -> None:
        self.webhook = None
        if self._pusher is not None:
            await self._pusher

    async def api_setmycommands(self, params: dict[str, Any]) -> Any:
        return True

    async def api_close(self, params: dict[str, Any]) -> Any:
        return True

    async def api_getupdates(self, params: dict[str, Any]) -> Any:
        self.get_updates_calls += 1
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset", 0) or 0)
        if offset:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        timeout = float(params.get("timeout", 0) or 0)
        limit = int(params.get("limit", 100) or 100)
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.pending:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.2))
        return self.pending[:limit]

    def _check_chat(self, chat_id: int) -> None:
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.held_back:
            seconds = self.held_back[chat_id]
            raise ApiError(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)

    @staticmethod
    def _check_text(text: Any) -> str:
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    @staticmethod
    def _check_markup(markup: Any) -> dict[str, Any] | None:
        if not markup:
            return None
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= CALLBACK_LIMIT:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: button text is empty")
        return markup

    def _check_rate(self, chat_id: int) -> None:
        if not self.limits:
            return
        now = time.monotonic()
        self._recent = [t for t in self._recent if now - t < 1.0]
        last = self._last_to_chat.get(chat_id)
        # A little slack, as Telegram allows short bursts; the limits are about sustained rates.
        if len(self._recent) >= self.per_second * 1.1 or (
            last is not None and now - last < self.per_chat_gap * 0.9
        ):
            self.too_many += 1
            raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        self._recent.append(now)
        self._last_to_chat[chat_id] = now

    async def api_sendmessage(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        self._check_chat(chat_id)
        self._check_rate(chat_id)
        text = self._check_text(params.get("text"))
        markup = self._check_markup(params.get("reply_markup"))
        message = SentMessage(chat_id, self._message_id(chat_id) + 100000, text, markup)
        self.sent.append(message)
        self.messages[(chat_id, message.message_id)] = message
        return message.as_message(self.bot_user)

    async def api_sendvoice(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        self._check_chat(chat_id)
        self._check_rate(chat_id)
        voice = params.get("voice")
        if isinstance(voice, bytes):
            file_id = self.add_file(voice)
        elif isinstance(voice, str) and voice in self.files:
            file_id = voice
        else:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        markup = self._check_markup(params.get("reply_markup"))
        message = SentMessage(
            chat_id,
            self._message_id(chat_id) + 100000,
            "",
            markup,
            voice=self.files[file_id],
            voice_file_id=file_id,
        )
        self.sent.append(message)
        self.messages[(chat_id, message.message_id)] = message
        return message.as_message(self.bot_user)

    async def api_getfile(self, params: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id"))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_size": len(self.files[file_id]),
            "file_path": f"voice/{file_id}.oga",
        }

    def download(self, path: str) -> bytes:
        """``.../file/bot<token>/voice/<id>.oga`` -> the file's content."""
        name = path.rsplit("/", 1)[-1].split(".", 1)[0]
        if name not in self.files:
            raise ApiError(404, "Not Found")
        return self.files[name]

    def _find(self, params: dict[str, Any]) -> SentMessage:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        return self.messages[key]

    async def api_editmessagetext(self, params: dict[str, Any]) -> Any:
        message = self._find(params)
        text = self._check_text(params.get("text"))
        markup = self._check_markup(params.get("reply_markup"))
        if text == message.text and markup == message.reply_markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content "
                "and reply markup are exactly the same",
            )
        message.history.append(message.text)
        message.text, message.reply_markup = text, markup
        return message.as_message(self.bot_user)

    async def api_editmessagereplymarkup(self, params: dict[str, Any]) -> Any:
        message = self._find(params)
        markup = self._check_markup(params.get("reply_markup"))
        if markup == message.reply_markup:
            raise ApiError(400, "Bad Request: message is not modified")
        message.reply_markup = markup
        return message.as_message(self.bot_user)

    async def api_deletemessage(self, params: dict[str, Any]) -> Any:
        message = self._find(params)
        del self.messages[(message.chat_id, message.message_id)]
        return True

    async def api_answercallbackquery(self, params: dict[str, Any]) -> Any:
        if len(str(params.get("text", ""))) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers.append(params)
        return True


def _decode(key: str, value: Any) -> Any:
    if key in JSON_FIELDS and isinstance(value, str):
        return json.loads(value)
    return value


def _error_body(exc: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
    if exc.retry_after is not None:
        body["parameters"] = {"retry_after": exc.retry_after}
    return body


class FakeBotAPIServer:
    """The fake over real HTTP on 127.0.0.1: ``base_url`` goes into TELEGRAM_API_URL."""

    def __init__(self, core: FakeTelegram) -> None:
        self.core = core
        self.app = web.Application(client_max_size=50 * 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.core.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if request.content_type == "application/json":
            params = await request.json()
        else:
            form = await request.post()
            params = {k: v for k, v in form.items() if isinstance(v, str)}
            # Uploaded files: "voice": "attach://<field>" points at a file field.
            files = {k: v.file.read() for k, v in form.items() if isinstance(v, web.FileField)}
            for key, value in list(params.items()):
                if value.startswith("attach://") and value[9:] in files:
                    params[key] = files[value[9:]]
            for key, content in files.items():
                params.setdefault(key, content)
        params.update({k: v for k, v in request.query.items() if k not in params})
        try:
            result = await self.core.call(request.match_info["method"], params)
        except ApiError as exc:
            return web.json_response(_error_body(exc), status=exc.code)
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.core.token:
            return web.Response(status=401)
        try:
            return web.Response(body=self.core.download(request.match_info["path"]))
        except ApiError:
            return web.Response(status=404)


class FakeSession(BaseSession):
    """An aiogram session that talks to the fake core in-process (no sockets)."""

    def __init__(self, core: FakeTelegram) -> None:
        super().__init__()
        self.core = core

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        files: dict[str, Any] = {}
        params = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files)
            if prepared:
                params[key] = prepared
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
                upload = files[value[9:]]
                params[key] = b"".join([chunk async for chunk in upload.read(bot)])
        try:
            result = await self.core.call(method.__api_method__, params)
            body = {"ok": True, "result": result}
            status = 200
        except ApiError as exc:
            body, status = _error_body(exc), exc.code
        response = self.check_response(bot=bot, method=method, status_code=status, content=json.dumps(body))
        return response.result  # type: ignore[return-value]

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield self.core.download(url)
