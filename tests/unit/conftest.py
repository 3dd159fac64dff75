"""Unit tests may be `async def`: each runs in its own `asyncio.run` (the stores and services are
coroutines; no plugin needed).  Fixtures: `stores`, the master's stores on real files under tmp_path;
`master`, a master identity (one per module); `secret`, a fresh session secret."""

from __future__ import annotations

import asyncio
import inspect
import os

import pytest

from rx.master.store import StoreConfig, open_stores
from rx.transport.crypto import Identity


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


@pytest.fixture
def stores(tmp_path):
    """The master's stores (the configured default backends) under tmp_path/pki and tmp_path/cache, prepared."""
    s = open_stores(StoreConfig(pki_dir=str(tmp_path / "pki"), cachedir=str(tmp_path / "cache")))
    asyncio.run(s.prepare())
    yield s
    s.close()


@pytest.fixture(scope="module")
def master() -> Identity:
    return Identity.generate()


@pytest.fixture
def secret() -> bytes:
    return os.urandom(32)
