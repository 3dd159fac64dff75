"""A fleet for the dashboard: a real rx-master with a `file` eauth user allowed everything, minions m1-m3
running and accepted, m4 running with its key pending, a pending key filed under an id that is HTML, and a real
rx-api on a free port serving the dashboard.  Shared by tests/browser and `python -m tests.browser.screenshots`.

The browser is Debian's chromium (tests/support/install_browser.sh), launched by Playwright through
`executable_path`: Playwright's own browser download is never used."""

from __future__ import annotations

import asyncio
import glob
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rx.master.store.file_keys import FileKeyStore
from rx.master.store.presence import open_presence
from rx.transport.crypto import Identity
from tests.support.daemon import Daemon, StartError
from tests.support.procs import DEADLINE, free_port, wait_for
from tests.support.sandbox import Sandbox

USER, PASSWORD = "ops", "dashboard-test-pw"
HOSTILE_ID = "<img src=x onerror=alert(1)>"
"""A minion id that is HTML: a minion may pick any id without / or NUL, and its key is filed under it."""
BROWSERS = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")


def find_browser() -> tuple[str | None, str]:
    """(path of a Chromium, "") or (None, why the browser tests cannot run)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None, "playwright is not installed (pip install -e '.[test]')"
    for name in BROWSERS:
        path = name if Path(name).is_absolute() and Path(name).exists() else shutil.which(name)
        if path:
            return path, ""
    return None, "no chromium (make browser, or: apt-get install chromium)"


def launch(playwright: Any, path: str) -> Any:
    """A headless Chromium from `path` (no sandbox: the tests run as root in CI)."""
    return playwright.chromium.launch(executable_path=path, headless=True, chromium_sandbox=False,
                                      args=["--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"])


@dataclass
class Dash:
    box: Sandbox
    url: str
    api: Daemon

    def fingerprint(self, minion_id: str) -> str:
        """The fingerprint of a key as the master files it (what the confirmation dialog must show)."""
        from tests.support.sandbox import key_fingerprint
        return _beside_the_browser(key_fingerprint, self.box.cfg, minion_id)

    def key_state(self, minion_id: str) -> str | None:
        """Where the master's key store files `minion_id` now."""
        found = _beside_the_browser(asyncio.run, FileKeyStore(self.box.cfg.pki_dir).find(glob.escape(minion_id)))
        return next((k.state for k in found if k.id == minion_id), None)

    def accepted_but_stopped(self, minion_id: str) -> None:
        """A minion that started once (its key accepted, its grains cached, the master's presence report listing
        it, so that it has a last-seen time) and is stopped now."""
        _beside_the_browser(self.box.start_minion, minion_id)
        presence = open_presence(self.box.cfg.sock_dir)

        def listed() -> bool:
            report = _beside_the_browser(asyncio.run, presence.read())
            return report is not None and minion_id in report.minions
        wait_for(listed, what=f"{minion_id} in the master's presence report")
        self.box.minions.pop(minion_id).stop()


def _beside_the_browser(fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn` in a thread of its own: Playwright's sync API keeps an asyncio loop running in this one, so
    the store's coroutines (asyncio.run) cannot run here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def _add_user(path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "rx.master.auth", "--add-user", USER, "--file", str(path),
                           "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise StartError(f"adding the eauth user failed: {done.stderr}")


def _file_pending(box: Sandbox, minion_id: str) -> None:
    """A pending key under `minion_id`, as the master files one when an unknown minion first authenticates."""
    store = FileKeyStore(box.cfg.pki_dir)
    asyncio.run(store.write("pending", minion_id, Identity.generate().public))


def api_settings(port: int) -> dict:
    """The master-config keys that start rx-api on 127.0.0.1:`port` with the clients the dashboard uses."""
    return {"api_port": port, "api_host": "127.0.0.1",
            "api_enable_clients": ["local", "local_async", "runner", "wheel"]}


def start_api(box: Sandbox, port: int) -> Daemon:
    """rx-api in the foreground on `port`, until it answers GET /."""
    argv = [sys.executable, "-m", "rx.api", "-c", str(box.master_dir)]
    daemon = Daemon("rx-api", argv, box.root / "api.log")
    url = f"http://127.0.0.1:{port}/"

    def answers() -> bool:
        if not daemon.alive():
            raise StartError(f"rx-api exited early:\n{daemon.output()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False
    wait_for(answers, DEADLINE, what="rx-api to answer GET /")
    return daemon


def open_dash(root: Path | None = None, *, hostile: bool = True) -> Dash:
    """Start the whole fleet (with `hostile`, also the pending key under HOSTILE_ID); close it with `close_dash`."""
    box = Sandbox(root or Path(tempfile.mkdtemp(prefix="rx-dash-")))
    try:
        passwords = box.root / "eauth-users"
        _add_user(passwords)
        port = free_port()
        box.start_master(external_auth={"file": {"^filename": str(passwords), USER: [".*", "@runner", "@wheel"]}},
                         **api_settings(port))
        box.start_minions(["m1", "m2", "m3"])
        box.start_minion("m4", accept=False, wait=False)
        wait_for(lambda: Path(box.cfg.pki_dir, "minions_pre", "m4").exists(), what="m4's pending key")
        if hostile:
            _file_pending(box, HOSTILE_ID)
        return Dash(box, f"http://127.0.0.1:{port}/", start_api(box, port))
    except BaseException:
        box.close()
        raise


def close_dash(dash: Dash) -> None:
    dash.api.stop()
    dash.box.close()
