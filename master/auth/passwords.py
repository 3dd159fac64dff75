"""The `file` back end: users and salted password hashes in a file (`external_auth: file: ^filename`).

One user a line, `name:hash`; blank lines and lines starting with `#` are skipped.  The hash is
scrypt (hashlib, no other library):

    alice:$scrypt$ln=15,r=8,p=1$<salt, base64>$<hash, base64>

`ln` is log2 of scrypt's N.  Plaintext is never accepted.  Add or change a user with
`python -m rx.master.auth --add-user NAME` (the password is asked twice on the terminal, or read from
standard input with `--password-stdin`); `--delete-user NAME` removes one.  The file must belong to
root or the master's user and be readable and writable by no one else (0600): it is ignored otherwise
(every login fails, and the master's log says why).  It is read again when it changes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat

log = logging.getLogger("rx.master.auth")

LN, R, P = 15, 8, 1
"""scrypt's cost for new hashes: N = 2**15, r = 8 (32 MiB, ~0.1 s per check)."""
MAX_LN = 20
SALT_BYTES = 16
HASH_BYTES = 32
MAX_FILE_BYTES = 4 * 1024 * 1024
NAME_RE = re.compile(r"[^\s:#][^\s:]{0,255}")
HASH_RE = re.compile(r"\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})")


class PasswordFileError(ValueError):
    pass


def hash_password(password: str, *, ln: int = LN) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, ln, R, P)
    return f"$scrypt$ln={ln},r={R},p={P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _scrypt(password: str, salt: bytes, ln: int, r: int, p: int) -> bytes:
    n = 1 << ln
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * r * n + (1 << 20),
                          dklen=HASH_BYTES)


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (False for anything not a hash rx makes)."""
    m = HASH_RE.fullmatch(stored)
    if m is None:
        return False
    ln, r, p = int(m[1]), int(m[2]), int(m[3])
    if not (1 <= ln <= MAX_LN and 1 <= r <= 32 and 1 <= p <= 16):
        return False
    try:
        salt, want = base64.b64decode(m[4], validate=True), base64.b64decode(m[5], validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(_scrypt(password, salt, ln, r, p), want)


@functools.cache
def _dummy() -> str:
    """Checked against for unknown users, so that a wrong name takes as long as a wrong password."""
    return hash_password("", ln=LN)


def parse(text: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, hashed = line.partition(":")
        if not sep or not NAME_RE.fullmatch(name) or not HASH_RE.fullmatch(hashed):
            raise PasswordFileError(f"line {n}: expected `name:$scrypt$...` (see python -m rx.master.auth --help)")
        users[name] = hashed
    return users


def unsafe(st: os.stat_result) -> str:
    """Why a password file must not be used ("" if it may): it must be a regular file of root or this
    process's user that nobody else can read or write."""
    from rx.master.autosign import unsafe as unsafe_to_trust
    why = unsafe_to_trust(st) or (  # a regular file of root or this user that nobody else can write...
        f"readable by group or others (mode {stat.S_IMODE(st.st_mode):04o})" if st.st_mode & 0o044 else "")  # or read
    return f"{why}; make it 0600, owned by root or the master's user" if why else ""


class FileBackend:
    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, str] = {}

    def authenticate(self, username: str, password: str) -> bool:
        users = self._load()
        stored = users.get(username)
        ok = verify_password(password, stored or _dummy())
        return ok and stored is not None and bool(password)

    def groups(self, username: str) -> list[str]:
        return []

    def _load(self) -> dict[str, str]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            log.error("eauth file: cannot read %s (%s): no file login can succeed", self.path, exc.strerror)
            return {}
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            why = unsafe(st)
            if why:
                log.error("eauth file: %s is %s; ignoring it: no file login can succeed", self.path, why)
                return {}
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                try:
                    self._users = parse(f.read(MAX_FILE_BYTES).decode("utf-8", errors="replace"))
                except PasswordFileError as exc:
                    log.error("eauth file: %s: %s; ignoring it: no file login can succeed", self.path, exc)
                    return {}
                self._stamp = stamp
        return self._users


def set_user(path: str, name: str, password: str | None) -> None:
    """Add or change `name` (password None: remove it), rewriting the file atomically (0600, created if
    missing; its owner is kept)."""
    if not NAME_RE.fullmatch(name):
        raise PasswordFileError(f"{name!r} is not a user name (no spaces or ':', at most 256 characters)")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        lines, st = [], None
    parse("\n".join(lines))
    kept = [line for line in lines if line.strip().partition(":")[0] != name or line.lstrip().startswith("#")]
    if password is not None:
        kept.append(f"{name}:{hash_password(password)}")
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, ("\n".join(kept) + "\n").encode())
        os.fsync(fd)
        if st is not None:
            os.fchown(fd, st.st_uid, st.st_gid)
    finally:
        os.close(fd)
    os.replace(tmp, path)
