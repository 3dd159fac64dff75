"""salt-api's request bodies and lowstates, sans-IO: bytes and a Content-Type in, checked Python values out,
or a `RequestError` that carries the HTTP status and a message for the caller.

A body is JSON, YAML (`application/x-yaml`, `text/yaml`), a form (`application/x-www-form-urlencoded`) or
`text/plain` holding JSON, as salt-api takes them.  Every decoded body passes one structure check (depth,
item count, plain values only: no YAML anchors, dates or binary, no NaN, integers msgpack can carry), so
what reaches a client is bounded whatever the parser would have built.  A lowstate is a list of chunks
(a single mapping is a list of one), each naming its `client`; `parse_low` turns one into a `Low`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import yaml

from rx.apiconfig import API_CLIENTS
from rx.client.plainyaml import load_plain
from rx.transport.ids import FUN_RE, TARGET_TYPES

MAX_CHUNKS = 50
"""Lowstate chunks one request may carry (each runs in turn; more is a 400)."""
MAX_DEPTH = 32
MAX_ITEMS = 200_000
"""Containers and scalars a decoded body may hold in all."""
MAX_FORM_FIELDS = 1000
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 64 - 1
"""What msgpack (the wire to the master and minions) can carry."""
TOKEN_RE = re.compile(r"[A-Za-z0-9_\-]{16,128}")
"""What an rx token looks like (secrets.token_urlsafe); anything else is refused before the token store."""
CREDENTIAL_KEYS = ("token", "username", "password", "eauth")
LOCAL_CLIENTS = ("local", "local_async", "local_batch", "local_subset")
BODY_TYPES = {"application/json": "json", "application/x-yaml": "yaml", "text/yaml": "yaml",
              "application/x-www-form-urlencoded": "form", "text/plain": "json"}
"""Request body types salt-api takes (text/plain: JSON sent with the wrong type, as some services do)."""


class RequestError(Exception):
    """A request refused before anything ran: `status` (400, 401, 403, 406, 413) and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------- bodies

INLINE_JSON_BYTES = 64 * 1024
INLINE_TEXT_BYTES = 4 * 1024
"""Bodies rx-api parses on its event loop: JSON (C, about 10 ms a MiB) up to INLINE_JSON_BYTES, YAML and forms
(pure Python, about 10 µs a byte: 64 KiB of YAML is most of a second) up to INLINE_TEXT_BYTES; larger ones are
parsed in rx-api's few decoding threads, so a body sent before any login (/login, /run) cannot stall it."""


def parse_inline(content_type: str | None, size: int) -> bool:
    """Whether a body of this type and size is parsed on the event loop (else in a decoding thread)."""
    kind = BODY_TYPES.get(media_type(content_type))
    return size <= (INLINE_JSON_BYTES if kind == "json" else INLINE_TEXT_BYTES)


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_body(content_type: str | None, body: bytes, *, lowstate: bool = True) -> Any:
    """The body as Python values (None when it is empty).  A form's `arg` values are read as YAML scalars and
    its `kwarg` as a YAML mapping, as salt-api does, when `lowstate`.  RequestError 406 for a type salt-api
    does not take, 400 for a body that does not parse or fails the structure check."""
    if not body:
        return None
    kind = BODY_TYPES.get(media_type(content_type))
    if kind is None:
        raise RequestError(406, f"content type {media_type(content_type) or '(none)'!r} is not supported; send "
                                f"one of: {', '.join(BODY_TYPES)}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(400, "the request body is not UTF-8 text") from None
    if kind == "form":
        data: Any = _form(text, lowstate)
    elif kind == "yaml":
        data = _yaml(text, "the request body")
    else:
        data = _json(text)
    return check_shape(data)


def _json(text: str) -> Any:
    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")
    try:
        return json.loads(text, parse_constant=no_constant)
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, f"the request body is not valid JSON: {str(exc)[:200]}") from None


def _yaml(text: str, what: str) -> Any:
    try:
        return load_plain(text)
    except yaml.YAMLError as exc:
        raise RequestError(400, f"{what} is not valid YAML: {str(exc)[:200]}") from None


def _form(text: str, lowstate: bool) -> dict[str, Any]:
    from rx.client.cliargs import parse_value
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:
        raise RequestError(400, f"the form body is not valid: {exc}") from None
    data: dict[str, Any] = {}
    for key, value in pairs:
        data.setdefault(key, []).append(value)
    out: dict[str, Any] = {k: v[0] if len(v) == 1 else v for k, v in data.items()}
    if lowstate and "arg" in out:
        out["arg"] = [parse_value(v) for v in data["arg"]]
    if lowstate and isinstance(out.get("kwarg"), str):
        kwarg = _yaml(out["kwarg"], "the form's kwarg")
        if not isinstance(kwarg, dict):
            raise RequestError(400, "the form's kwarg must be a YAML mapping, e.g. kwarg={name: value}")
        out["kwarg"] = kwarg
    return out


def check_shape(data: Any) -> Any:
    """`data` if it is plain (mappings with string keys, lists, strings, finite numbers msgpack carries,
    booleans, None) and within MAX_DEPTH and MAX_ITEMS; RequestError 400 otherwise."""
    items = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        items += 1
        if items > MAX_ITEMS:
            raise RequestError(400, f"the request body holds more than {MAX_ITEMS} values")
        if depth > MAX_DEPTH:
            raise RequestError(400, f"the request body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    raise RequestError(400, f"mapping keys must be strings, got {type(k).__name__} {str(k)[:40]!r}")
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        elif isinstance(value, int):
            if not INT_MIN <= value <= INT_MAX:
                raise RequestError(400, "an integer in the request body is out of range (64 bits)")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise RequestError(400, "NaN and infinite numbers are not accepted")
        else:
            raise RequestError(400, f"a {type(value).__name__} value is not accepted in a request body (YAML dates "
                                    "and binary: quote them as strings)")
    return data


# ---------------------------------------------------------------- lowstates

def chunks(data: Any) -> list[dict]:
    """The lowstate chunks of a decoded body: a list of mappings (a mapping alone is a list of one)."""
    if data is None:
        raise RequestError(400, "no lowstate in the request body: send [{\"client\": ..., \"fun\": ...}]")
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise RequestError(400, "Lowstates must be a list of mappings")
    if not data:
        raise RequestError(400, "the lowstate list is empty")
    if len(data) > MAX_CHUNKS:
        raise RequestError(400, f"at most {MAX_CHUNKS} lowstate chunks in one request, got {len(data)}")
    return data


@dataclass(frozen=True)
class Credentials:
    """What a chunk (or a /login body) says about who sends it."""

    token: str = ""
    username: str = ""
    password: str = ""
    eauth: str = ""

    @property
    def login(self) -> bool:
        return bool(self.username and self.eauth)


def credentials(chunk: dict) -> Credentials:
    """The credentials in a chunk or login body; RequestError 400 for ones of the wrong type, 401 for a
    token that cannot be one of rx's."""
    values = {k: chunk.get(k) for k in CREDENTIAL_KEYS if chunk.get(k) not in (None, "")}
    for key, value in values.items():
        if not isinstance(value, str) or len(value) > 1024:
            raise RequestError(400, f"{key} must be a string (at most 1024 characters)")
    token = values.get("token", "")
    if token and not TOKEN_RE.fullmatch(token):
        raise RequestError(401, "invalid token")
    return Credentials(token, values.get("username", ""), values.get("password", ""), values.get("eauth", ""))


@dataclass(frozen=True)
class Low:
    """One checked chunk: `options` holds its other keys (timeout, batch, subset, match, jid, a runner's
    keyword arguments...), credentials removed."""

    client: str
    fun: str | list
    tgt: str | list | None = None
    tgt_type: str = "glob"
    arg: list = field(default_factory=list)
    kwarg: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)


def parse_low(chunk: dict, client: str | None = None) -> Low:
    """A chunk as a `Low` (`client` overrides the chunk's, as /minions does); RequestError 400 for an unknown
    client, a missing or malformed function, target, arg or kwarg."""
    name = client or chunk.get("client")
    if not isinstance(name, str) or name not in API_CLIENTS:
        shown = str(name)[:40] if name is not None else "(none)"
        raise RequestError(400, f"unknown client {shown!r}: rx-api has {', '.join(API_CLIENTS)}")
    fun = chunk.get("fun")
    if isinstance(fun, list) and name in LOCAL_CLIENTS:
        if not fun or not all(isinstance(f, str) and FUN_RE.match(f) for f in fun):
            raise RequestError(400, "fun: a list of functions must hold module.function names")
    elif not isinstance(fun, str) or not FUN_RE.match(fun):
        raise RequestError(400, f"fun: {str(fun)[:80]!r} is not a function name (module.function)")
    arg = chunk.get("arg", [])
    arg = [] if arg is None or arg == "" else arg if isinstance(arg, list) else [arg]
    kwarg = chunk.get("kwarg") or {}
    if not isinstance(kwarg, dict):
        raise RequestError(400, "kwarg must be a mapping of keyword arguments")
    tgt, tgt_type = None, "glob"
    if name in LOCAL_CLIENTS:
        tgt = chunk.get("tgt")
        if isinstance(tgt, str) and tgt.strip():
            pass
        elif isinstance(tgt, list) and tgt and all(isinstance(t, str) and t for t in tgt):
            pass
        else:
            raise RequestError(400, "tgt: give a target (a string, or a list of minion ids)")
        tgt_type = chunk.get("tgt_type", chunk.get("expr_form", "glob")) or "glob"
        if tgt_type not in TARGET_TYPES:
            raise RequestError(400, f"tgt_type: {str(tgt_type)[:40]!r} is not one of {', '.join(TARGET_TYPES)}")
    skip = {"client", "fun", "arg", "kwarg", *CREDENTIAL_KEYS}
    if name in LOCAL_CLIENTS:
        skip |= {"tgt", "tgt_type", "expr_form"}  # a runner's (cache.grains) are its arguments
    options = {k: v for k, v in chunk.items() if k not in skip}
    return Low(name, fun, tgt, tgt_type, list(arg), dict(kwarg), options)


def enabled_check(client: str, enabled: tuple[str, ...] | frozenset[str]) -> None:
    """RequestError 403 unless the config enables `client`."""
    if client not in enabled:
        raise RequestError(403, f"client disabled: {client!r}; add it to api_enable_clients in the master config "
                                "to enable it")


def number(options: dict, key: str, *, low: float = 0.0, high: float = 86400.0) -> float | None:
    """An option that must be a number within [low, high] (None when not given); RequestError 400 otherwise."""
    value = options.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RequestError(400, f"{key}: {str(value)[:40]!r} is not a number from {low:g} to {high:g}")
    return float(value)
