"""Error types of the wire: what a peer sends back (`ErrorKind`) and what parsing raises
(`ProtocolError`).  Errors are values with fields, never strings to match on."""

from __future__ import annotations

import enum


class ErrorKind(str, enum.Enum):
    """Machine-readable kinds of error reply; the value is what travels on the wire."""

    BAD_REQUEST = "bad_request"
    """The request is malformed or names something that does not exist (caller's fault)."""
    BAD_TARGET = "bad_target"
    """The target expression does not parse or cannot be used."""
    PERMISSION = "permission"
    """The caller is not allowed to do this (root key, ACL)."""
    AUTH = "auth"
    """The sender is not an accepted minion, or its request does not authenticate."""
    REAUTH = "reauth"
    """The session key rotated: authenticate again and resend."""
    UNKNOWN_JOB = "unknown_job"
    """No such job id in the job store."""
    DUPLICATE = "duplicate"
    """Already done: a replayed request or a return stored before."""
    INTERNAL = "internal"
    """The master failed; its log says why."""
    UNAVAILABLE = "unavailable"
    """A store or service the master needs is down; retry later."""
    RENDER = "render"
    """A file the master renders for the minion (pillar) does not render: the message names file and line."""


class ProtocolError(ValueError):
    """A decoded message whose shape or values are not what the protocol allows; `field` names
    the offending field (dotted for nested ones) when there is one."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message

    def within(self, parent: str) -> "ProtocolError":
        """The same error, its field prefixed by the field that contains it (`jobs[2].jid`)."""
        return ProtocolError(self.reason, f"{parent}.{self.field}" if self.field else parent)


class ReplyError(Exception):
    """The peer answered with an error reply."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.message = message

    @property
    def type(self) -> str:
        return self.kind.value
