"""The local token store: one file per eauth token in `token_dir` (0700), named by the token's SHA-256
(so the directory's listing gives no usable token) and holding its record (msgpack, 0600); and the
failed-login counts in `.failures` beside them, changed under an flock so that the processes taking
logins (the user socket's relay, rx-api) share one count.

A token file that is unreadable, corrupt or not for the token asked is no token.  Expired tokens are
removed when they are next asked for and by `purge`."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import hmac
import os
from pathlib import Path

from rx.master.store.base import TokenRecord
from rx.master.store.errors import StoreError
from rx.transport.codec import DecodeError, decode, encode
from rx.transport.crypto import ensure_private_dir, write_secret
from rx.transport.errors import ProtocolError
from rx.transport.usermsgs import TOKEN_RE

FAILURES_FILE = ".failures"
MAX_FAILURE_KEYS = 10_000
"""Most users and sources whose failures are remembered; past it the stalest are forgotten."""
MAX_TOKEN_BYTES = 64 * 1024


def token_name(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class FileTokenStore:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)

    async def prepare(self) -> None:
        ensure_private_dir(self.dir)

    def _path(self, token: str) -> Path | None:
        return self.dir / token_name(token) if TOKEN_RE.fullmatch(token) else None

    async def put(self, record: TokenRecord) -> None:
        path = self._path(record.token)
        if path is None:
            raise StoreError("refusing to store a malformed token")
        try:
            write_secret(path, encode(record.to_wire()))
        except OSError as exc:
            raise StoreError(f"cannot write a token in {self.dir}: {exc.strerror}") from None

    async def get(self, token: str) -> TokenRecord | None:
        path = self._path(token)
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read a token in {self.dir}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            raw = f.read(MAX_TOKEN_BYTES + 1)
        try:
            record = TokenRecord.from_wire(decode(raw, max_bytes=MAX_TOKEN_BYTES, max_objects=1000))
        except (DecodeError, ProtocolError, ValueError):
            return None
        return record if hmac.compare_digest(record.token, token) else None

    async def remove(self, token: str) -> bool:
        path = self._path(token)
        if path is None:
            return False
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    async def purge(self, now: float) -> int:
        def walk() -> int:
            gone = 0
            for entry in os.scandir(self.dir):
                if entry.name.startswith("."):
                    continue
                try:
                    with open(entry.path, "rb") as f:
                        record = TokenRecord.from_wire(decode(f.read(MAX_TOKEN_BYTES + 1), max_bytes=MAX_TOKEN_BYTES,
                                                              max_objects=1000))
                    if record.expire > now:
                        continue
                except (OSError, DecodeError, ProtocolError, ValueError):
                    pass  # unreadable or corrupt: no token, remove it
                try:
                    os.unlink(entry.path)
                    gone += 1
                except FileNotFoundError:
                    pass
            return gone
        try:
            return await asyncio.to_thread(walk)
        except FileNotFoundError:
            return 0

    # ------------------------------------------------------------ failed logins

    async def locked_until(self, keys: list[str], now: float) -> float:
        table = await asyncio.to_thread(self._change, None)
        return max((table.get(k, {}).get("until", 0.0) for k in keys), default=0.0)

    async def note_failure(self, keys: list[str], now: float, window: float, limit: int, lockout: float) -> float:
        def count(table: dict) -> float:
            until = 0.0
            for key in keys:
                entry = table.setdefault(key, {"times": [], "until": 0.0})
                entry["times"] = [t for t in entry["times"] if now - t < window][-limit:] + [now]
                if len(entry["times"]) >= limit:
                    entry["until"] = until = max(entry["until"], now + lockout)
            _bound(table, now)
            return until
        return await asyncio.to_thread(self._change, count)

    async def clear_failures(self, keys: list[str]) -> None:
        def clear(table: dict) -> None:
            for key in keys:
                table.pop(key, None)
        await asyncio.to_thread(self._change, clear)

    def _change(self, change):  # type: ignore[no-untyped-def]
        """Run `change(table)` on the failures table under the lock and write it back (None: just read it);
        returns what `change` returned (the table when reading)."""
        path = self.dir / FAILURES_FILE
        try:
            fd = os.open(self.dir / ".failures.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot use {self.dir}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if change else fcntl.LOCK_SH)
            try:
                table = _clean(decode(path.read_bytes(), max_objects=MAX_FAILURE_KEYS * 40))
            except (FileNotFoundError, DecodeError):
                table = {}
            if change is None:
                return table
            result = change(table)
            write_secret(path, encode(table))
            return result
        finally:
            os.close(fd)


def _clean(table: object) -> dict:
    """The well-formed entries of a failures table read from disk."""
    if not isinstance(table, dict):
        return {}
    return {k: {"times": [float(t) for t in e["times"] if isinstance(t, (int, float))], "until": float(e["until"])}
            for k, e in table.items() if isinstance(k, str) and isinstance(e, dict)
            and isinstance(e.get("times"), list) and isinstance(e.get("until"), (int, float))}


def _bound(table: dict, now: float) -> None:
    """Forget keys with no failure in the last hour and no lock in force, then the stalest past the bound."""
    for key in [k for k, e in table.items() if e["until"] <= now and (not e["times"] or now - e["times"][-1] > 3600)]:
        del table[key]
    if len(table) > MAX_FAILURE_KEYS:
        for key in sorted(table, key=lambda k: table[k]["times"][-1] if table[k]["times"] else 0)[
                :len(table) - MAX_FAILURE_KEYS]:
            del table[key]
