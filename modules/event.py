"""Fire events on the master's event bus from a minion.

Unlike Salt, where a minion may fire any tag, an rx minion's events are always filed under its own
namespace: `event.send myapp/deployed` from minion web1 arrives on the master's bus as
`rx/minion/web1/myapp/deployed`, with the minion's authenticated id in the data (`id`).  The
minion sends it through its sealed link to the master, as it sends its returns.
"""

from __future__ import annotations

import os
from typing import Any

from rx.modules import CommandError, ExecContext

__all__ = ["send", "fire_master"]


def _pick(source: dict, which: Any) -> dict:
    """All of `source` for True, or the keys named (a list or 'a,b')."""
    if which is True:
        return dict(source)
    names = which.split(",") if isinstance(which, str) else which if isinstance(which, list) else None
    if names is None:
        raise CommandError(f"expected True or a list of names, got {which!r}")
    return {n: source[n] for n in names if n in source}


def send(ctx: ExecContext, tag: str, data: dict | None = None, preload: dict | None = None,
         with_env: Any = False, with_grains: Any = False, with_pillar: Any = False, **kwargs: Any) -> bool:
    """Fire an event with `tag` (relative, e.g. 'myapp/deployed') and `data` (a map; other
    key=value arguments are added to it) on the master's bus, as rx/minion/<this id>/<tag>.
    with_grains=True (or a list of grain names) adds `grains`, with_env=True (or names) adds `env`
    (this job's environment variables).  Return True once the minion has the event (it sends it on,
    retrying as for returns).  Up to 1 MiB encoded and 1000 events per job; the tags 'start' and
    'grains' are the minion's own.

    CLI example: rx '*' event.send myapp/deployed version=1.2 with_grains='[os, osrelease]'
    """
    payload: dict = {}
    for part, name in ((preload, "preload"), (data, "data")):
        if part is not None and not isinstance(part, dict):
            raise CommandError(f"{name} must be a map, got {part!r}")
        payload.update(part or {})
    payload.update(kwargs)
    if with_grains:
        payload["grains"] = _pick(dict(ctx.grains or {}), with_grains)
    if with_env:
        payload["env"] = _pick(dict(os.environ), with_env)
    if with_pillar:
        raise CommandError("with_pillar: rx puts no pillar on the event bus (it may hold secrets); pass the values "
                           "you mean to send as data (pillar.get)")
    if ctx.fire_event is None:
        raise CommandError("event.send needs a running minion to send through (rx-call --local has no master)")
    ctx.fire_event(tag, payload)
    return True


def fire_master(ctx: ExecContext, data: dict, tag: str) -> bool:
    """Salt's older name: fire `data` with `tag` on the master's bus (as event.send; note the order).

    CLI example: rx '*' event.fire_master '{status: ok}' myapp/status
    """
    return send(ctx, tag, data)
