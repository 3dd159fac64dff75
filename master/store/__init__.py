"""The master's state behind interfaces: `base` declares them, `factory.open_stores` picks the
backends the config names, `errors` holds what they raise.

Names are loaded on first use (PEP 562), so a client that only catches a store error does not load
the store machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "base": ("JobRecord", "JobTarget", "JobQuery", "KeyInfo", "Decision", "SessionKeys", "KEY_STATES", "JobStore", "KeyStore",
             "GrainsStore", "SessionStore", "ReplayGuard", "PROBE_FUNS", "PROBE_KEEP_SECONDS",
             "Trimmed", "TokenRecord", "TokenStore"),
    "errors": ("StoreError", "JobExists", "UnknownJob", "NotExpected", "KeyStoreError", "StoreUnavailable",
               "ReturnsLost"),
    "factory": ("Stores", "StoreConfig", "open_stores", "store_config", "BACKENDS"),
}
_MODULE = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE)


def __getattr__(name: str) -> Any:
    module = _MODULE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
