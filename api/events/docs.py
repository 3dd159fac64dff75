"""docs/api-events.md, generated from the code it documents (`python -m rx.api.events --markdown`): the
routes, the frames, the notices, Salt's tag table and the settings come from the modules that define them,
so the reference cannot drift from them; tests/unit/test_api_events_docs.py checks the file is current."""

from __future__ import annotations

from rx.api.events import core, handlers, hub, salttags, wire

INTRO = """\
# rx-api: the live event stream

<!-- Generated from rx/api/events by `make docs` (python -m rx.api.events --markdown > docs/api-events.md);
     edit the code, not this file. tests/unit/test_api_events_docs.py fails when this file is out of date. -->

rx-api streams the master's event bus (jobs published, returns, keys, minions' events, hooks) to HTTP clients
as salt-api does: server-sent events at `GET /events` and a WebSocket feed, so salt-api clients and web UIs
work unchanged. rx-api holds ONE subscription to the bus and fans it out; each event gets an id, the last
`api_event_replay` events are kept for clients that reconnect, and a client that stops reading is dropped
without slowing anyone else.
"""


def _routes() -> list[str]:
    rows = ["| Route | What |", "|---|---|"]
    seen = set()
    for path, cls, _kw in handlers.event_routes(None, None):  # type: ignore[arg-type]
        shown = path.replace("([^/]+)", "<token>")
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        rows.append(f"| `GET {shown}` | {doc if cls not in seen else 'the same, the token in the path'} |")
        seen.add(cls)
    return rows


def _notices() -> list[str]:
    return ["| Tag | Has an id | Meaning |", "|---|---|---|"] + [f"| `{t}` | {i} | {m} |" for t, i, m in core.NOTICES]


def _salt_table() -> list[str]:
    doc = salttags.__doc__ or ""
    lines = [ln.strip() for ln in doc.split("\n\n")[1].splitlines()]
    rows = ["| rx's tag | With `salt_event_tags: true` | Data fields |", "|---|---|---|"]
    for ln in lines:
        parts = [p for p in ln.split("  ") if p.strip()]
        rows.append("| " + " | ".join(f"`{p.strip()}`" if n < 2 and "/" in p else p.strip()
                                      for n, p in enumerate(parts)) + " |")
    return rows


def _settings() -> list[str]:
    from rx.apieventsconfig import ApiEventSettings
    from rx.configspec import keys, markdown_table
    return [markdown_table(keys(ApiEventSettings).values(), ("master",))]


def markdown() -> str:
    """The whole reference page."""
    sse_example = wire.SSE_PREAMBLE.decode() + wire.sse_frame(
        1764547200000001, "rx/job/20261201000000000001/new", wire.event_json(
            "rx/job/20261201000000000001/new", {"jid": "20261201000000000001", "fun": "test.ping", "arg": [],
                                                "tgt": "*", "tgt_type": "glob", "user": "root",
                                                "minions": ["web1"]})).decode() + wire.SSE_KEEPALIVE.decode()
    parts = [INTRO, "## Routes", "", *_routes(), "",
             f"""Authentication is rx-api's: the token from `/login` in `X-Auth-Token` (or the session cookie). As
salt-api allows, `/events` also takes it as `?token=` (or `?salt_token=`) and the WebSocket in its path
(`/ws/<token>`), for browsers whose EventSource and WebSocket cannot set headers: such tokens end up in
proxies' and servers' access logs, so prefer the header or the cookie. No token or a bad one: 401 with
`{{"status": 401, "return": "..."}}`. The token is checked again every {hub.TOKEN_RECHECK:g} seconds: once it
expires or is revoked (`/logout`) the stream ends with `rx/api/closed`. Each stream is a line in the audit log
(`action: api`, the path with any token in it shown as `***`, the status, the events it delivered), written
when it ends (a WebSocket's when its handshake ends).

Query parameters (both routes): `tag=PREFIX` keeps only events whose tag starts with it (repeat it for
several, at most {handlers.MAX_PREFIXES}; rx-api's own notices always pass), `last_event_id=ID` (as the
`Last-Event-ID` header) resumes after that event. The WebSocket also takes `format_events`.
""",
             "## Server-sent events: `GET /events`", "",
             "Each event is an `id:` line, a `tag:` line and a `data:` line with `{\"tag\", \"data\"}` as JSON, then "
             "a blank line; the stream starts with salt-api's `retry: 400` and an idle stream gets a "
             "`: keep-alive` comment every `api_event_keepalive` seconds:", "", "```text", sse_example.rstrip(),
             "```", "",
             """```sh
curl -sS localhost:8000/login -H 'Accept: application/json' -d username=alice -d password=... -d eauth=pam
curl -N localhost:8000/events -H 'X-Auth-Token: <token>'                       # everything alice may see
curl -N 'localhost:8000/events?tag=rx/job/' -H 'X-Auth-Token: <token>' -H 'Last-Event-ID: 1764547200000001'
```

Ids are integers that increase by one per event, starting from the clock in microseconds when rx-api starts,
so a restarted rx-api's ids are higher than the last run's. A browser's EventSource reconnects by itself and
sends `Last-Event-ID`: if that event is still in the replay window the client gets exactly what it missed; if
not (or after an rx-api restart) it first gets `rx/api/gap`, then everything still kept.
""",
             "## WebSocket: `/ws`, `/ws/<token>`", "",
             f"""After the handshake the client sends `{wire.WS_READY}` (as salt-api wants it; every message gets
`{wire.WS_ACK}`); the events then come one message each, `data: {{"tag": ..., "data": ..., "id": ...}}`
followed by a blank line (salt-api's form, with the id added in the JSON). With `?format_events`, salt-api's
summaries come instead, as bare JSON: `{{"jobs": {{jid: {{"jid", "start_time", "fun", "tgt", "tgt_type",
"state", "minions": {{id: {{"success", "return", "retcode"}}}}}}}}}}` after job events, `{{"minions": [{{"id",
"grains"}}]}}` after key events and `grains.items` returns. Unlike Salt, rx-api keeps the last 100 jobs in that
summary and runs no `grains.items` when a client connects (a stream publishes nothing). Cross-origin WebSocket
handshakes are refused (the cookie must not let another site read the stream).
""",
             "## rx-api's own events", "", *_notices(), "",
             "## Who sees what", "",
             """Every authenticated user gets the events that are not about a job: keys, minions' authentications,
events minions fire, hooks, rx-api's notices (as salt-api, which shows every event to every user). A job's
events (`rx/job/<jid>/new`: its arguments; `.../ret/<id>`: its returns, which may hold secrets such as a
`cmd.run` output) go only to root, to users whose rights allow the `jobs.lookup_jid` runner (they can read any
job's returns through the runner client anyway: `@runner` or `@jobs`), and to the user who published the job.
A return of a job rx-api did not see published (before it started) goes only to the first two.
""",
             "## Clients that do not keep up", "",
             f"""Each client has a queue of at most `api_event_client_queue` events (and
{core.CLIENT_MAX_BYTES >> 20} MiB). A client that falls further behind, one that never reads, is
disconnected at once (a WebSocket with close code 1013), counted and logged once; nothing waits for it and no
other client is slowed. A burst larger than the queue drops the clients that cannot take it at once, so the
default (10,000 events) is far above what the bus carries in the time a client needs to read. The replay
window keeps at most `api_event_replay` events and {core.RING_MAX_BYTES >> 20} MiB.

One rx-api serves at most {core.MAX_CLIENTS} streams, and one user at most {core.MAX_CLIENTS_PER_USER} of them (/events
and WebSockets together; a WebSocket counts from its handshake, before it says it is ready): one more is a 503,
so a single login cannot take every stream, or the file descriptors behind them, from the others.

When rx-master stops or restarts, rx-api keeps running: every client gets `rx/api/bus` `state: lost`, rx-api
subscribes again as soon as the bus answers, and they get `state: back`.
""",
             "## Salt's tags (`salt_event_tags: true`)", "",
             "With `salt_event_tags: true` in the master config rx-api presents events under Salt's tag names and "
             "data fields, for tools written against salt-api (the `tag` filter then takes Salt's tags):", "",
             *_salt_table(), "",
             (salttags.__doc__ or "").split("\n\n")[2].strip(), "",
             "## Settings (in the master config; docs/config.md)", "", *_settings()]
    return "\n".join(parts)
