"""Clients of the master: LocalClient (sync) and AsyncLocalClient, and the CLIs.

The clients are imported on first use, so `rx --version` stays fast.
"""

from typing import Any

__all__ = ["AsyncLocalClient", "LocalClient"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rx.client import local
        return getattr(local, name)
    raise AttributeError(name)
