"""rx-call's way to the master: authenticate with the minion's own key (rx-call runs as root, or as the
minion's user, on the minion host and reads its pki_dir) and send the return as a sealed
`_call_return`; the master files it under a new jid, which is returned.

A running rx-minion with the same key is not disturbed: the master keeps no per-connection session
(each request key is derived from the master's session secret, the key serial and the minion id), so
both hold the same keys and each sealed request is checked on its own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rx.client.results import MasterError, MasterUnreachable
from rx.config import MinionConfig
from rx.transport.callmsgs import CALL_RETURN, CallReply, CallReturn
from rx.transport.errors import ProtocolError

KEY_FILE = "minion.key"


class ReturnNotSent(MasterUnreachable):
    """The return could not be delivered; the message says why (the value was still printed)."""


async def send_return(cfg: MinionConfig, call: CallReturn, timeout: float) -> str:
    """Deliver `call` to the master; its jid.  ReturnNotSent when it cannot be delivered within `timeout`
    seconds, MasterError when the master refused it."""
    try:
        async with asyncio.timeout(timeout):
            return await _send(cfg, call)
    except TimeoutError:
        raise ReturnNotSent(f"the master at {cfg.master}:{cfg.master_port} did not take the return within "
                            f"{timeout:g}s") from None


async def _send(cfg: MinionConfig, call: CallReturn) -> str:
    from rx.minion.link import MasterLink, Status
    from rx.transport.crypto import Identity
    from rx.transport.handshake import AuthError
    from rx.transport.roles import RequestTimeout, open_transport
    key_path = Path(cfg.pki_dir) / KEY_FILE
    try:
        identity = Identity.from_bytes(key_path.read_bytes())
    except FileNotFoundError:
        raise ReturnNotSent(f"no minion key at {key_path}: start rx-minion once (it makes the key and the master "
                            "accepts it), or use --local") from None
    except PermissionError:
        raise ReturnNotSent(f"cannot read {key_path}: run rx-call as root or as the minion's user") from None
    transport = open_transport()
    link = MasterLink(cfg, identity, transport)
    try:
        try:
            status, session = await link.auth.once()
        except RequestTimeout:
            raise ReturnNotSent(f"the master at {cfg.master}:{cfg.master_port} does not answer") from None
        except AuthError as exc:
            raise ReturnNotSent(str(exc)) from None
        if session is None:
            raise ReturnNotSent(f"this minion's key is {status} on the master" +
                                (f"; accept it there with: rx-key -a {cfg.id}" if status == "pending" else ""))
        link.session = session
        outcome = await link.exchange(CALL_RETURN, call.to_wire(), attempts=3)
    finally:
        await link.aclose()
        transport.close()
    if outcome.status is Status.UNDELIVERED:
        raise ReturnNotSent(f"the master did not take the return: {outcome.reason}")
    if outcome.status is Status.REFUSED or outcome.reply is None:
        raise MasterError(f"the master refused the return: {outcome.reason}")
    try:
        return CallReply.from_wire(outcome.reply).jid
    except ProtocolError:
        return ""  # delivered, answered as a duplicate (a retry after a lost reply): no jid to tell
