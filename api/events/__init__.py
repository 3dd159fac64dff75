"""rx-api's live event stream: `GET /events` (server-sent events) and a WebSocket feed, salt-api compatible,
with ids, resume from `Last-Event-ID` over a bounded replay window, and Salt's tag names on request.

Wiring (rx-api's Application):

    hub = open_hub(cfg, auth=auth_service)       # once, in the process that serves HTTP
    routes += event_routes(hub, authenticate)    # authenticate(handler) -> Principal (rx-api's one check)
    await hub.start()                            # in the IOLoop; returns at once
    ...
    await hub.stop()                             # ends every stream (rx/api/closed), then the subscription

Modules: `core` (sans-IO: ids, window, rights, queues), `hub` (the bus subscription), `handlers` (HTTP),
`wire` (framing), `salttags` (Salt's tags), `formatted` (the WebSocket's format_events), `docs`
(docs/api-events.md: `python -m rx.api.events --markdown`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rx.api.events.hub import EventHub

__all__ = ["open_hub", "event_routes"]


def open_hub(cfg: Any, *, auth: Any = None) -> "EventHub":
    """The hub for a master config: its bus, the api_event_* settings, salt_event_tags.  `auth` (an
    rx.master.services.auth.AuthService) decides who sees every job's events and writes each stream's audit
    line; without it one is made from the config's external_auth and publisher_acl (rights only: no token
    store, no audit log)."""
    import dataclasses

    from rx.api.events.hub import EventHub, sees_all_jobs_of
    from rx.config import narrow
    from rx.master.services import event_service
    from rx.master.services.auth import AuthPolicy, AuthService
    if auth is None:
        policy = dataclasses.replace(narrow(cfg, AuthPolicy), audit_log_file="")
        auth = AuthService(policy, None)  # type: ignore[arg-type]
    return EventHub(event_service(cfg), sees_all_jobs=sees_all_jobs_of(auth), auth=auth, pidfile=cfg.pidfile,
                    keepalive=cfg.api_event_keepalive, replay=cfg.api_event_replay,
                    client_queue=cfg.api_event_client_queue, salt_tags=cfg.salt_event_tags)


def event_routes(hub: "EventHub", authenticate: Any) -> list[tuple[str, type, dict]]:
    """`/events`, `/ws` and `/ws/<token>` for rx-api's route table (rx.api.events.handlers)."""
    from rx.api.events.handlers import event_routes as routes
    return routes(hub, authenticate)
