"""Names that travel on the wire and are used as keys or paths: minion ids, job ids,
function names and target type names.  Their rules live here, at the bottom layer, so
every layer above checks them the same way (DESIGN §3)."""

from __future__ import annotations

import datetime
import re
import time
from typing import Any

MINION_ID_MAX = 255
_MINION_ID_BAD = re.compile(r"[/\\\x00]")
JID_RE = re.compile(r"^[0-9]{20}\Z")
FUN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\Z")
ENV_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
"""A file server or pillar environment name (`base`, `dev`, `prod-eu`): it names a directory in the minion's cache."""
TARGET_TYPES = ("glob", "pcre", "list", "grain", "grain_pcre", "ipcidr", "compound", "nodegroup", "pillar",
                "pillar_pcre")
"""Every target type a publish request may name (the matcher in rx.targeting implements them)."""


def validate_minion_id(minion_id: Any) -> str | None:
    """Return why `minion_id` is not acceptable, or None if it is."""
    if not isinstance(minion_id, str):
        return "must be a string"
    if not minion_id or len(minion_id.encode("utf-8", "surrogatepass")) > MINION_ID_MAX:
        return f"must be 1-{MINION_ID_MAX} bytes long (UTF-8)"
    if not minion_id.isprintable():
        return "must contain only printable characters"
    if _MINION_ID_BAD.search(minion_id):
        return "must not contain '/', '\\' or NUL"
    if minion_id.startswith("."):
        return "must not start with '.'"
    return None


def is_jid(value: Any) -> bool:
    return isinstance(value, str) and JID_RE.match(value) is not None


def new_jid(now: float | None = None) -> str:
    """A 20-digit, time-ordered job id (UTC, microseconds)."""
    t = datetime.datetime.fromtimestamp(time.time() if now is None else now, tz=datetime.timezone.utc)
    return t.strftime("%Y%m%d%H%M%S%f")
