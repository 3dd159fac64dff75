"""Minion keys as a service (what rx-key and the API call): list, find, fingerprints, accept,
reject, delete.  Revoking an accepted key rotates the session serial, so that minion can neither
read later publications nor return.  Works while the master is stopped; events reach the bus when
it runs.  Never prints or prompts."""

from __future__ import annotations

from dataclasses import dataclass

from rx.master.services.events import EventService
from rx.master.store import KeyInfo, KeyStoreError, Stores
from rx.master.store.base import KEY_STATES
from rx.transport.keyprint import fingerprint
from rx.transport.events import KeyEvent

ACTS = {"accept": "accepted", "reject": "rejected", "delete": None}


@dataclass(frozen=True)
class Fingerprint:
    id: str
    state: str
    fingerprint: str


class KeyService:
    def __init__(self, stores: Stores, events: EventService) -> None:
        self.stores = stores
        self.events = events

    async def listing(self) -> dict[str, list[str]]:
        return {state: await self.stores.keys.ids(state) for state in KEY_STATES}

    async def fingerprints(self, pattern: str = "*") -> list[Fingerprint]:
        return [Fingerprint(k.id, k.state, k.fingerprint) for k in await self.stores.keys.find(pattern)]

    async def master_fingerprint(self) -> str | None:
        public = await self.stores.keys.master_public()
        return fingerprint(public) if public is not None else None

    async def keys(self, pattern: str = "*", states: tuple[str, ...] = KEY_STATES) -> list[KeyInfo]:
        """The keys (public key included) whose ids match `pattern`, in the states given."""
        return await self.stores.keys.find(pattern, states)

    async def candidates(self, act: str, pattern: str | None, *, include_rejected: bool = False,
                         include_denied: bool = False, include_accepted: bool = False) -> list[KeyInfo]:
        """The keys `act` would change (Salt's rules): accept takes pending keys (and rejected or denied ones if
        asked), reject pending keys (and accepted or denied ones if asked), delete keys in any state."""
        keys = self.stores.keys
        if act == "accept":
            states = ("pending",) + (("rejected",) if include_rejected else ()) + (
                ("denied",) if include_denied else ())
            found = await keys.find(pattern or "*", states)
            accepted = {k.id for k in await keys.find(pattern or "*", ("accepted",))}
            clash = sorted({k.id for k in found if k.state == "denied"} & accepted)
            if clash:
                raise KeyStoreError(f"cannot accept denied key(s) for {', '.join(clash)}: another key is accepted "
                                    "for that id; delete it first with rx-key -d")
            return found
        if act == "reject":
            states = ("pending",) + (("accepted",) if include_accepted else ()) + (
                ("denied",) if include_denied else ())
            return await keys.find(pattern or "*", states)
        if act == "delete":
            return await keys.find(pattern or "*")
        raise ValueError(f"unknown key action {act!r}")

    async def apply(self, act: str, found: list[KeyInfo]) -> bool:
        """Do `act` to each key; returns True if an accepted key was revoked (the session rotated)."""
        to_state = ACTS[act]
        revoked = False
        for k in found:
            if to_state is None:
                await self.stores.keys.remove(k.state, k.id)
                await self.stores.grains.remove(k.id)
            else:
                await self.stores.keys.move(k, to_state)
            revoked |= k.state == "accepted" and to_state != "accepted"
        if revoked:
            await self.stores.session.rotate()
        await self.events.fire([KeyEvent(k.id, act, k.fingerprint) for k in found])
        return revoked

    async def rotate(self) -> int:
        """Rotate the session key serial now (every minion re-authenticates); returns the new serial."""
        return (await self.stores.session.rotate()).serial
