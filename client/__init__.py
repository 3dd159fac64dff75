"""Clients of the master: LocalClient (sync, in the shapes of Salt's) and AsyncLocalClient, and the CLIs.

The clients are imported on first use, so `rx --version` stays fast.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (rx --version)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["AsyncLocalClient", "LocalClient"]


def __getattr__(name: str) -> Any:
    if name == "LocalClient":
        from rx.client.synclocal import LocalClient
        return LocalClient
    if name == "AsyncLocalClient":
        from rx.client.local import AsyncLocalClient
        return AsyncLocalClient
    raise AttributeError(name)
