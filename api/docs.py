"""docs/api.md, generated from rx-api's route table, its clients and the wheel allow-list:
`python -m rx.api --markdown > docs/api.md` (`make docs`); tests/unit/test_api_docs.py checks it is current."""

from __future__ import annotations

import inspect

from rx.api.app import ROUTES
from rx.api.base import __doc__ as BASE_DOC
from rx.api.clients import CLIENT_DOCS
from rx.api.wheel import CONFIG_SHOWN, WHEEL
from rx.apiconfig import API_CLIENTS
from rx.modules import CONTEXT_PARAM

_INTRO = """\
# rx-api reference

<!-- Generated from api/app.py's route table, api/clients.py and api/wheel.py by `make docs`
     (python -m rx.api --markdown > docs/api.md); edit those, not this file.
     tests/unit/test_api_docs.py fails when this file is out of date. -->

rx-api serves salt-api's REST API for the master on its host: `rx-api -c /etc/rx` (README, rx-api, for
starting it, logging in and enabling clients; docs/config.md for its settings). Requests and answers are
JSON (YAML with `Accept: application/x-yaml`); request bodies are JSON, YAML, a form
(`application/x-www-form-urlencoded`) or `text/plain` holding JSON, at most `max_request_body_size` bytes.

A **lowstate** is a list of chunks (a single mapping is a list of one), each `{"client": ..., "fun": ...}` with
`tgt`, `tgt_type` (Salt's `expr_form` too), `arg` (a list; a single value is a list of one), `kwarg`, and the
client's options; at most 50 chunks, run in turn. Every chunk is checked (client known and enabled,
function name, target) before the first one runs.
"""

_ERRORS = """\
## Errors

An error is `{"status": code, "return": message}` (salt-api's JSON error shape), never a stack trace:

| status | when |
|---|---|
| 400 | a body that does not parse or holds what rx refuses (YAML aliases, dates, NaN, more than 32 levels or 200,000 values), a malformed lowstate, an unknown client or function, wrong arguments (the usage is in the message) |
| 401 | no token, or one that is malformed, unknown, expired or revoked; bad login credentials |
| 403 | a client not in `api_enable_clients`; a function or target outside the user's rights (nothing is published: the master's worker refused it); the CSRF rule; a CORS preflight from an origin not allowed |
| 404 | no such path, job or file |
| 406 | a request body type salt-api does not take |
| 413 | a body over `max_request_body_size` (/login, /token, /logout: 64 KiB), from its Content-Length or as it streams |
| 429 | logins locked out (`auth_failures_max` failures within a minute for the user or the address; `Retry-After` says for how long) |
| 502 | the master answered that it failed (see its log) |
| 503 | the master is not running on this host, or a store it needs is unavailable |
"""


def _wheel_section() -> list[str]:
    parts = ["## Wheel functions (client `wheel`)\n",
             "Only these; each needs the `@wheel` right (or `@key`, `@minions`, `@config`: Salt's forms), checked "
             "and audited before it runs. `match` is a minion id, a glob, a list, or ids separated by commas "
             "(POST /keys/<id> takes that id only).\n"]
    for name, func in WHEEL.items():
        sig = inspect.signature(func)
        params = [p for n, p in enumerate(sig.parameters.values()) if not (n == 0 and p.name == CONTEXT_PARAM)]
        shown = str(sig.replace(parameters=[p.replace(annotation=inspect.Parameter.empty) for p in params],
                                return_annotation=inspect.Signature.empty))
        parts.append(f"### `{name}{shown}`\n\n{inspect.cleandoc(func.__doc__ or '')}\n")
    parts.append("`config.values` returns these settings only: " + ", ".join(f"`{n}`" for n in sorted(CONFIG_SHOWN))
                 + ".\n")
    return parts


def reference_markdown() -> str:
    parts = [_INTRO, "## Routes\n", "| path | methods | authentication | what |", "|---|---|---|---|"]
    for route in ROUTES:
        doc = route.doc.replace("|", "\\|")
        parts.append(f"| `{route.path}` | {route.methods} | {route.auth} | {doc} |")
    parts.append("\nRoutes the event stream adds (`/events`, `/ws`) are documented with it.\n")
    parts += ["## Clients\n", "Each is refused (403) until `api_enable_clients` names it.\n",
              "| client | what |", "|---|---|"]
    parts += [f"| `{name}` | {CLIENT_DOCS[name]} |" for name in API_CLIENTS]
    parts.append("\nRunner and wheel functions take keyword arguments from `kwarg`, from `key=value` strings in "
                 "`arg`, and from the chunk's own keys that name one of their parameters "
                 "(`{\"client\": \"wheel\", \"fun\": \"key.finger\", \"match\": \"web1\"}`).\n")
    parts += _wheel_section()
    parts.append(_ERRORS)
    parts.append("## Authentication, CSRF, CORS\n\n" + inspect.cleandoc(BASE_DOC or "").split("\n\n", 1)[1] + "\n")
    return "\n".join(parts)
