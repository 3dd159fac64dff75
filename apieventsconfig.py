"""rx-api's settings for its live event stream (`GET /events`, the WebSocket feed): the replay window a
reconnecting client resumes from, how far one client may fall behind before it is dropped, keep-alives, and
Salt's tag names.  A mixin of MasterConfig (rx-api reads the master's config file, as salt-api does), kept
out of config.py to keep that file small."""

from __future__ import annotations

from dataclasses import dataclass

from rx.configspec import SECONDS, Rule, setting


@dataclass(frozen=True)
class ApiEventSettings:
    """rx-api's event stream (docs/api-events.md)."""

    api_event_replay: int = setting(
        5000, rule=Rule("a whole number 0-1000000", lambda v: 0 <= v <= 1_000_000),
        doc="events rx-api keeps so that a client reconnecting with `Last-Event-ID` gets what it missed (also at "
            "most 64 MiB of them); an older id gets an `rx/api/gap` event first. 0: no resume")
    api_event_client_queue: int = setting(
        10000, rule=Rule("a whole number 10-1000000", lambda v: 10 <= v <= 1_000_000),
        doc="events waiting for one client of /events or the WebSocket feed (also at most 32 MiB): a client that "
            "falls further behind (one that never reads) is disconnected and counted; the others are not slowed")
    api_event_keepalive: float = setting(15.0, rule=SECONDS,
                                         doc="seconds between keep-alive comments on an idle /events stream (and "
                                             "WebSocket pings)")
    salt_event_tags: bool = setting(False, rule=Rule("true or false"),
                                    doc="present events under Salt's tags and data fields (`salt/job/<jid>/new`, "
                                        "`salt/job/<jid>/ret/<id>`, `salt/auth`, `salt/key`, `salt/minion/<id>/start`) "
                                        "for Salt tools; false: rx's own (`rx/job/...`)")
