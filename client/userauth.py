"""`rx -a EAUTH [-T]`: log in through an external-auth back end, and the token file `~/.rx_token`.

`rx -a pam '*' test.ping` asks for the password (on the terminal, else one line of standard input), logs
in, runs the job with the new token and revokes it when done.  With `-T` the token is kept in
`~/.rx_token` (0600) instead, and later `rx` commands of that user use it until it expires
(`token_expire`, 12 h by default); `rx -a pam -T` alone only logs in.  A user who cannot read the root
key and has no token is the local user the kernel names (`publisher_acl`).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import stat
import sys

from rx.client.exits import BadRequest, PermissionDenied

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the CLIs' start-up)
if TYPE_CHECKING:
    from typing import AsyncIterator

    from rx.config import MasterConfig

TOKEN_FILE = "~/.rx_token"


def token_path() -> str:
    return os.path.expanduser(TOKEN_FILE)


def read_token() -> str | None:
    """The token in ~/.rx_token (None: no file); PermissionDenied if others could read or replace it."""
    path = token_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PermissionDenied(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd) as f:
        st = os.fstat(f.fileno())
        if st.st_uid != os.getuid() or st.st_mode & 0o077 or not stat.S_ISREG(st.st_mode):
            raise PermissionDenied(f"{path} must be a file of yours that no one else can read (chmod 600 {path}); "
                                   "not using it")
        return f.read(256).strip() or None


def save_token(token: str) -> str:
    """Write ~/.rx_token (0600, replacing any); returns its path."""
    path = token_path()
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, token.encode() + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def add_auth_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("external authentication")
    g.add_argument("-a", "--auth", "--eauth", "--external-auth", dest="eauth", metavar="EAUTH",
                   help="log in through this external_auth back end (pam, file, ...) and run as that user")
    g.add_argument("-T", "--make-token", action="store_true",
                   help=f"with -a: keep the token in {TOKEN_FILE} for later commands (alone: only log in)")
    g.add_argument("--username", help="with -a: the user to log in as (default: your login name)")


def read_password(username: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {username}: ")
    return sys.stdin.readline().rstrip("\n")


@contextlib.asynccontextmanager
async def cli_session(opts: argparse.Namespace, cfg: "MasterConfig") -> AsyncIterator[str | None]:
    """The token `rx` runs with: with -a a new login (kept in ~/.rx_token with -T, else revoked at the
    end); None without -a (the root key, ~/.rx_token or the local user: rx.client.masterlink)."""
    if not getattr(opts, "eauth", None):
        if getattr(opts, "make_token", False):
            raise BadRequest("-T makes a token by logging in: give the back end with -a (e.g. -a pam)")
        yield None
        return
    from rx.client.masterlink import MasterLink
    username = opts.username or getpass.getuser()
    link = MasterLink(cfg=cfg)
    token: str | None = None
    try:
        token = (await link.login(opts.eauth, username, read_password(username))).token
        if opts.make_token:
            print(f"token kept in {save_token(token)}", file=sys.stderr)
        yield token
    finally:
        try:
            if token is not None and not opts.make_token:
                await link.logout(token)
        finally:
            await link.aclose()
