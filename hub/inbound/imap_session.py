"""One authenticated IMAP connection through aioimaplib, and the parsing of its responses.

Connects with implicit TLS, STARTTLS (RFC 3501 section 6.2.1, done here because aioimaplib has
no ``starttls()``) or, on a loopback address only, plaintext; logs in with LOGIN or
AUTHENTICATE PLAIN (RFC 4616, as a SASL-IR initial response, RFC 4959); selects a mailbox and
reads UIDVALIDITY; searches and fetches by UID in small sets (aioimaplib is quadratic on big
FETCH responses and overflows its recursion on more than ~200 response lines); sets a keyword
or moves messages; waits in IDLE (RFC 2177). Every network or server failure is raised as
:class:`ImapError`, which is temporary: the fetcher reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import re
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aioimaplib import aioimaplib

from hub.config import ImapSection
from hub.errors import ConfigError, TemporaryError

log = logging.getLogger(__name__)

_FETCH_START = re.compile(rb"^(\d+) FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_EXISTS = re.compile(rb"^(\d+) EXISTS")


class ImapError(TemporaryError):
    """The server or the network failed us; reconnect later."""


@dataclass(frozen=True)
class MailboxStatus:
    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int


def uid_set(uids: Iterable[int]) -> str:
    """A compact IMAP sequence set of UIDs: ``1:3,7,9:10``."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("empty UID set")
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def parse_fetch(lines: Sequence[bytes | bytearray]) -> list[tuple[bytes, bytes | None]]:
    """Group aioimaplib's flat FETCH response into (attribute text, literal or None) per message.

    The attribute text joins the opening line and whatever follows the literal, because servers
    may send ``UID`` after the body (``* 1 FETCH (BODY[] {12} ... UID 5)``).
    """
    records: list[tuple[bytes, bytes | None]] = []
    text: bytes | None = None
    literal: bytes | None = None
    for line in lines:
        if isinstance(line, bytearray):
            if text is not None:
                literal = bytes(line)
            continue
        if _FETCH_START.match(line):
            if text is not None:
                records.append((text, literal))
            text, literal = line, None
        elif text is not None:
            text += b" " + line
    if text is not None:
        records.append((text, literal))
    return records


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(section: ImapSection) -> ssl.SSLContext:
    """Certificate and host name checked; a private CA only through ``cafile``."""
    cafile = str(section.cafile) if section.cafile is not None else None
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)


def _check(response: Any, what: str) -> Any:
    if response.result != "OK":
        text = b" ".join(line for line in response.lines if isinstance(line, bytes))
        raise ImapError(f"{what} refused: {text.decode(errors='replace')[:200]}")
    return response


class ImapSession:
    """A logged-in connection; create with :meth:`open`, always :meth:`close`."""

    def __init__(self, client: Any, section: ImapSection, lost: asyncio.Event) -> None:
        self._client = client
        self._section = section
        self._lost = lost
        self.selected: str | None = None

    @property
    def account(self) -> str:
        return account_name(self._section)

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self._client.protocol.capabilities)

    @classmethod
    async def open(cls, section: ImapSection) -> ImapSession:
        if section.username is None or section.password is None:
            raise ConfigError("imap.username and imap.password are required to fetch mail")
        if section.security == "none" and not _is_loopback(section.host):
            raise ConfigError(
                "imap.security = none is only accepted on a loopback address "
                "(use tls or starttls: the password and the mail would cross the network "
                "in clear text)"
            )
        lost = asyncio.Event()

        def on_lost(_exc: Exception | None) -> None:
            lost.set()

        context = tls_context(section) if section.security == "tls" else None
        try:
            client = aioimaplib.IMAP4(
                host=section.host,
                port=section.port,
                timeout=section.timeout,
                conn_lost_cb=on_lost,
                ssl_context=context,
            )
            await client.wait_hello_from_server()
        except (OSError, TimeoutError, ssl.SSLError, aioimaplib.AioImapException) as exc:
            raise ImapError(f"cannot connect to {section.host}:{section.port}: {exc!r}") from None
        session = cls(client, section, lost)
        try:
            if section.security == "starttls":
                await session._starttls()
            await session._authenticate()
        except BaseException:
            await session.close()
            raise
        return session

    async def _call(self, coro: Any, what: str) -> Any:
        """Await an aioimaplib call, turning every failure into :class:`ImapError`."""
        if self._lost.is_set():
            coro.close()
            raise ImapError(f"{what}: connection lost")
        try:
            return await asyncio.wait_for(coro, self._section.timeout)
        except (OSError, TimeoutError, aioimaplib.AioImapException, RecursionError) as exc:
            raise ImapError(f"{what} failed: {exc!r}") from None

    async def _starttls(self) -> None:
        """STARTTLS, refusing a server that sends anything after its OK (response injection).

        RFC 3501 6.2.1: the client must discard what it knew about the capabilities afterwards.
        """
        protocol = self._client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapError("the server does not offer STARTTLS (imap.security = starttls)")
        tag = protocol.new_tag()
        received = bytearray()
        original = protocol.data_received

        def recording(data: bytes) -> None:
            received.extend(data)
            original(data)

        protocol.data_received = recording
        try:
            command = aioimaplib.Command("STARTTLS", tag, loop=protocol.loop)
            _check(await self._call(protocol.execute(command), "STARTTLS"), "STARTTLS")
        finally:
            del protocol.data_received
        last_line = bytes(received).rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1]
        if not received.endswith(b"\r\n") or not last_line.startswith(tag.encode() + b" "):
            raise ImapError("the server sent data after its STARTTLS answer; refusing it")
        loop = asyncio.get_running_loop()
        try:
            transport = await asyncio.wait_for(
                loop.start_tls(
                    protocol.transport,
                    protocol,
                    tls_context(self._section),
                    server_hostname=self._section.host,
                ),
                self._section.timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ImapError(f"STARTTLS handshake failed: {exc!r}") from None
        protocol.transport = transport
        protocol.capabilities = set()
        await self._call(protocol.capability(), "CAPABILITY")

    async def _authenticate(self) -> None:
        protocol = self._client.protocol
        user = self._section.username or ""
        password = self._section.password.get_secret_value() if self._section.password else ""
        if self._section.auth == "plain":
            if "AUTH=PLAIN" not in protocol.capabilities or "SASL-IR" not in protocol.capabilities:
                raise ImapError("the server does not offer AUTHENTICATE PLAIN with SASL-IR")
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
            command = aioimaplib.Command("AUTHENTICATE", protocol.new_tag(), "PLAIN", token)
            response = await self._call(protocol.execute(command, scrub=token), "AUTHENTICATE")
            _check(response, "AUTHENTICATE PLAIN")
            protocol.state = aioimaplib.AUTH
        else:
            _check(await self._call(self._client.login(user, password), "LOGIN"), "LOGIN")
        # RFC 3501 7.2.1: capabilities may change after authentication
        await self._call(protocol.capability(), "CAPABILITY")

    async def select(self, mailbox: str) -> MailboxStatus:
        response = _check(await self._call(self._client.select(mailbox), "SELECT"), "SELECT")
        uidvalidity = uidnext = None
        exists = 0
        for line in response.lines:
            if not isinstance(line, bytes):
                continue
            if match := _UIDVALIDITY.search(line):
                uidvalidity = int(match.group(1))
            if match := _UIDNEXT.search(line):
                uidnext = int(match.group(1))
            if match := _EXISTS.match(line):
                exists = int(match.group(1))
        if uidvalidity is None:
            raise ImapError(f"SELECT {mailbox}: the server sent no UIDVALIDITY")
        self.selected = mailbox
        return MailboxStatus(mailbox, uidvalidity, uidnext, exists)

    async def uid_search(self, *criteria: str) -> list[int]:
        response = await self._call(self._client.uid_search(*criteria, charset=None), "SEARCH")
        _check(response, "UID SEARCH")
        uids: list[int] = []
        # aioimaplib strips "* SEARCH"; the last line is the tagged completion text
        for line in response.lines[:-1]:
            if isinstance(line, bytes):
                parts = line.split()
                if parts and parts[0] == b"SEARCH":
                    parts = parts[1:]
                if all(part.isdigit() for part in parts):
                    uids.extend(int(part) for part in parts)
        return sorted(uids)

    async def _uid_fetch(self, uids: Sequence[int], items: str) -> list[tuple[bytes, bytes | None]]:
        if len(uids) > 200:
            raise ValueError("at most 200 messages per FETCH (aioimaplib recursion limit)")
        response = await self._call(self._client.uid("fetch", uid_set(uids), items), "FETCH")
        return parse_fetch(_check(response, "UID FETCH").lines)

    async def fetch_sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """UID -> RFC822.SIZE (messages expunged meanwhile are missing)."""
        sizes: dict[int, int] = {}
        for text, _literal in await self._uid_fetch(uids, "(UID RFC822.SIZE)"):
            uid, size = _UID.search(text), _SIZE.search(text)
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    async def fetch_bodies(self, uids: Sequence[int], part: str = "") -> dict[int, bytes]:
        """UID -> the raw message (or ``part``, e.g. ``HEADER``), read with BODY.PEEK so that
        nothing is marked \\Seen by reading it (RFC 3501 6.4.5)."""
        found: dict[int, bytes] = {}
        for text, literal in await self._uid_fetch(uids, f"(UID BODY.PEEK[{part}])"):
            uid = _UID.search(text)
            if uid and literal is not None:
                found[int(uid.group(1))] = literal
        return found

    async def add_keyword(self, uids: Sequence[int], keyword: str) -> None:
        response = await self._call(
            self._client.uid("store", uid_set(uids), "+FLAGS.SILENT", f"({keyword})"), "STORE"
        )
        _check(response, "UID STORE")

    async def move(self, uids: Sequence[int], target: str) -> None:
        """UID MOVE (RFC 6851), or COPY + \\Deleted + UID EXPUNGE (RFC 4315) without it."""
        uidset = uid_set(uids)
        if "MOVE" in self.capabilities:
            _check(await self._call(self._client.uid("move", uidset, target), "MOVE"), "UID MOVE")
            return
        _check(await self._call(self._client.uid("copy", uidset, target), "COPY"), "UID COPY")
        store = self._client.uid("store", uidset, "+FLAGS.SILENT", r"(\Deleted)")
        _check(await self._call(store, "STORE"), "UID STORE")
        if "UIDPLUS" in self.capabilities:
            _check(await self._call(self._client.uid("expunge", uidset), "EXPUNGE"), "EXPUNGE")

    async def create_mailbox(self, name: str) -> None:
        """CREATE, ignoring the error for a mailbox that exists already."""
        await self._call(self._client.create(name), "CREATE")

    async def wait_for_news(self, seconds: float, stop: asyncio.Event) -> bool:
        """IDLE until the server reports a change, ``seconds`` pass or ``stop`` is set.

        True when the server pushed something (a new message: ``EXISTS``).
        """
        if "IDLE" not in self.capabilities:
            raise ImapError("the server does not offer IDLE")
        try:
            idle = await asyncio.wait_for(
                self._client.idle_start(timeout=seconds), self._section.timeout
            )
        except (TimeoutError, aioimaplib.AioImapException) as exc:
            raise ImapError(f"IDLE failed: {exc!r}") from None
        push = asyncio.ensure_future(self._client.wait_server_push(timeout=seconds + 5))
        stopped = asyncio.ensure_future(stop.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        news = False
        try:
            await asyncio.wait({push, stopped, lost}, return_when=asyncio.FIRST_COMPLETED)
            if push.done() and not push.cancelled() and push.exception() is None:
                lines = push.result()
                news = lines != aioimaplib.STOP_WAIT_SERVER_PUSH and any(
                    b"EXISTS" in line for line in lines if isinstance(line, bytes)
                )
        finally:
            for task in (push, stopped, lost):
                task.cancel()
        if self._lost.is_set():
            idle.cancel()
            raise ImapError("connection lost during IDLE")
        self._client.idle_done()
        try:
            await asyncio.wait_for(idle, self._section.timeout)
        except (TimeoutError, aioimaplib.AioImapException) as exc:
            raise ImapError(f"IDLE did not end: {exc!r}") from None
        return news

    async def close(self) -> None:
        """LOGOUT when possible, then drop the connection; never raises."""
        try:
            if not self._lost.is_set():
                await asyncio.wait_for(self._client.logout(), 5)
        except Exception as exc:  # the connection is going away anyway
            log.debug("imap: logout failed: %r", exc)
        transport = getattr(self._client.protocol, "transport", None)
        if transport is not None:
            transport.close()
        for task in list(getattr(self._client, "tasks", ())):
            task.cancel()


def account_name(section: ImapSection) -> str:
    """How checkpoints and stored messages name the account: ``user@host:port``."""
    return f"{section.username or ''}@{section.host}:{section.port}"[:320]
