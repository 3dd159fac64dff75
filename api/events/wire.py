"""How events are framed for clients, as salt-api frames them (pure).

Server-sent events (`GET /events`, text/event-stream): the stream opens with `retry: 400`, then each event
is an `id:` line (rx-api's; what `Last-Event-ID` resumes from), a `tag:` line and a `data:` line holding
`{"tag": ..., "data": ...}` as JSON, ended by a blank line; an idle stream gets `: keep-alive` comments.
The WebSocket feed sends each event as one text message `data: {"tag": ..., "data": ..., "id": ...}` and a
blank line (salt-api's rest_cherrypy /ws; `id` is rx-api's addition), or, with `format_events`, Salt's
summaries as bare JSON (rx.api.events.formatted).
"""

from __future__ import annotations

from typing import Any

from rx.api.jsontext import dumps

SSE_PREAMBLE = b"retry: 400\n"
"""What salt-api sends first: browsers reconnect 400 ms after a dropped stream (with Last-Event-ID)."""
SSE_KEEPALIVE = b": keep-alive\n\n"
WS_READY = "websocket client ready"
"""The message a WebSocket client sends to start the stream (as salt-api wants it)."""
WS_ACK = "server received message"


def event_json(tag: str, data: Any) -> bytes:
    """`{"tag": ..., "data": ...}`, encoded once per event and shared by every client."""
    return dumps({"tag": tag, "data": data}).encode()


def safe_tag(tag: str) -> str:
    """The tag for a `tag:` line: control characters (a newline would start a forged field) escaped."""
    return tag if tag.isprintable() else tag.encode("unicode_escape").decode("ascii")


def sse_frame(event_id: int | None, tag: str, blob: bytes) -> bytes:
    """One server-sent event; `event_id` None for rx-api's own notices that are not part of the replay."""
    head = b"" if event_id is None else b"id: %d\n" % event_id
    return head + b"tag: " + safe_tag(tag).encode() + b"\ndata: " + blob + b"\n\n"


def ws_message(event_id: int | None, blob: bytes) -> str:
    """One WebSocket message (salt-api's `data: <json>` form; the event's id inside the JSON)."""
    text = blob.decode()
    if event_id is not None:
        text = f'{text[:-1]}, "id": {event_id}}}'
    return f"data: {text}\n\n"
