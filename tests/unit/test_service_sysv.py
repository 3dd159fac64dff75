"""service on init scripts (sysv_service), for real: a tiny init script in a temporary directory, pointed at
with the minion's `service_init_dir` setting (its rc?.d links made by rx beside it), and one in the real
/etc/init.d enabled and disabled with Debian's update-rc.d; both removed in a finally."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from rx.config import load_minion_config
from rx.modules import CommandError, ExecContext
from rx.modules import sysv_service as svc

pytestmark = pytest.mark.skipif(svc.__virtual__() is not True, reason="systemd or OpenRC is the init system here")

SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: rx test service
### END INIT INFO
PIDFILE={state}/{name}.pid
running() {{ [ -f $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; }}
case "$1" in
  start) running && exit 0
         echo "env HOME=${{HOME:-unset}}" > {state}/{name}.env
         sleep {secs} &   # keeps the script's stdout open, as careless scripts do
         echo $! > $PIDFILE; echo "started" ;;
  stop) running && kill "$(cat $PIDFILE)"; rm -f $PIDFILE ;;
  restart) "$0" stop; "$0" start ;;
  reload) running || {{ echo "{name} is not running" >&2; exit 7; }}
          echo reload >> {state}/{name}.reloads ;;
  status) running && {{ echo running; exit 0; }}; echo "not running"; exit 3 ;;
  *) echo "Usage: $0 {{start|stop|restart|reload|status}}" >&2; exit 2 ;;
esac
"""


def _write_script(directory: Path, name: str, state: Path, secs: int) -> Path:
    path = directory / name
    path.write_text(SCRIPT.format(name=name, state=state, secs=secs))
    path.chmod(0o755)
    return path


def _kill_from(pidfile: Path) -> None:
    try:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


@pytest.fixture
def initd(tmp_path):
    """A temporary init.d with script `rxdemo`, and an ExecContext whose minion config points at it."""
    etc = tmp_path / "etc"
    (etc / "init.d").mkdir(parents=True)
    state = tmp_path / "state"
    state.mkdir()
    secs = 600000 + secrets.randbelow(99999)
    _write_script(etc / "init.d", "rxdemo", state, secs)
    (etc / "init.d" / "README").write_text("not a script\n")
    (tmp_path / "conf").mkdir()
    cfg = load_minion_config(str(tmp_path / "conf"), overrides={"service_init_dir": str(etc / "init.d"),
                                                                "id": "m1"})
    try:
        yield ExecContext(minion_id="m1", config=cfg), etc, state, secs
    finally:
        _kill_from(state / "rxdemo.pid")


def test_actions_for_real(initd):
    ctx, etc, state, secs = initd
    assert svc.get_all(ctx) == ["rxdemo"] and svc.available(ctx, "rxdemo") and svc.missing(ctx, "nosuch")
    assert svc.status(ctx, "rxdemo") is False and svc.get_running(ctx) == []
    assert svc.start(ctx, "rxdemo") is True  # returns although the daemon holds the script's stdout
    pid = int((state / "rxdemo.pid").read_text())
    assert svc.status(ctx, "rxdemo") is True and svc.get_running(ctx) == ["rxdemo"]
    assert svc.status(ctx, "rx*") == {"rxdemo": True} and svc.status(ctx, "zz*") == {}
    assert svc.status(ctx, "whatever", sig=f"sleep {secs}") is True
    assert os.getsid(pid) != os.getsid(0)  # its own session: the daemon outlives the job's process group
    assert (state / "rxdemo.env").read_text() == "env HOME=unset\n"  # the plain environment service(8) gives

    assert svc.reload(ctx, "rxdemo") is True and (state / "rxdemo.reloads").read_text() == "reload\n"
    assert svc.restart(ctx, "rxdemo") is True
    assert int((state / "rxdemo.pid").read_text()) != pid and svc.status(ctx, "rxdemo") is True
    assert svc.stop(ctx, "rxdemo") is True and svc.status(ctx, "rxdemo") is False
    assert svc.status(ctx, "whatever", sig=f"sleep {secs}") is False
    with pytest.raises(CommandError, match="reload failed \\(exit 7\\): rxdemo is not running"):
        svc.reload(ctx, "rxdemo")
    with pytest.raises(CommandError, match="not available: no executable init script"):
        svc.start(ctx, "nosuch")
    with pytest.raises(CommandError, match="name must be"):
        svc.start(ctx, "../../bin/sh")


def test_enable_disable_with_links(initd):
    ctx, etc, state, _ = initd
    assert svc.enabled(ctx, "rxdemo") is False and svc.get_enabled(ctx) == []
    assert svc.enable(ctx, "rxdemo") is True
    for lvl in "2345":
        link = etc / f"rc{lvl}.d" / "S01rxdemo"
        assert link.is_symlink() and os.readlink(link) == "../init.d/rxdemo"
    assert (etc / "rc0.d" / "K01rxdemo").is_symlink()
    assert svc.enabled(ctx, "rxdemo") and svc.get_enabled(ctx) == ["rxdemo"] and svc.get_disabled(ctx) == []
    shown = svc.show(ctx, "rxdemo")
    assert shown["enabled"] is True and shown["running"] is False and shown["Provides"] == "rxdemo"
    assert shown["links"]["2"] == ["S01rxdemo"]
    assert svc.disable(ctx, "rxdemo") is True
    assert (etc / "rc2.d" / "K99rxdemo").is_symlink() and not (etc / "rc2.d" / "S01rxdemo").exists()
    assert svc.disabled(ctx, "rxdemo") and svc.get_disabled(ctx) == ["rxdemo"]
    assert svc.enable(ctx, "rxdemo") is True and svc.enabled(ctx, "rxdemo")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("update-rc.d"), reason="needs root and update-rc.d")
def test_real_etc_init_d_with_update_rc_d(tmp_path):
    name = f"rx-test-{secrets.token_hex(3)}"
    ctx = ExecContext()  # no minion config (rx-call --local): the default /etc/init.d
    script = _write_script(Path("/etc/init.d"), name, tmp_path, 600000 + secrets.randbelow(99999))
    try:
        assert svc.available(ctx, name) and name in svc.get_all(ctx)
        assert svc.enabled(ctx, name) is False
        assert svc.enable(ctx, name) is True
        assert os.path.islink(f"/etc/rc2.d/S01{name}") and svc.enabled(ctx, name) and name in svc.get_enabled(ctx)
        assert svc.disable(ctx, name) is True
        assert not os.path.exists(f"/etc/rc2.d/S01{name}") and svc.disabled(ctx, name)
        assert svc.start(ctx, name) and svc.status(ctx, name) and svc.stop(ctx, name)
        assert svc.status(ctx, name) is False
    finally:
        _kill_from(tmp_path / f"{name}.pid")
        subprocess.run(["update-rc.d", "-f", name, "remove"], capture_output=True, timeout=60)
        script.unlink()
    assert not list(Path("/etc").glob(f"rc?.d/[SK]??{name}"))
