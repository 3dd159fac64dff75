"""The rx sandbox behind `make demo`, `make stop` and `make clean-demo`: one master and three
minions (web1, web2, db1) on 127.0.0.1, every file under .demo/ in the checkout, no root needed.

    python -m tests.support.demo start   stop any old sandbox, build a fresh one, accept the keys,
                                         run `rx '*' test.ping` and `rx '*' cmd.run 'uname -a'`, start
                                         rx-api (the dashboard) with a `demo` user and a random password
    python -m tests.support.demo stop    stop the sandbox daemons (by their pidfiles); keeps .demo/
    python -m tests.support.demo clean   stop, then remove .demo/ (and its short sock dir in /tmp, if any)

Environment: DEMO_PUB_PORT (default 24505), DEMO_RET_PORT (default 24506), DEMO_API_PORT (default 28000), DEMO_DIR (default
<checkout>/.demo).  Run from the checkout with the venv's python (the Makefile does).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, TypeVar

from rx.config import ConfigError

from .daemon import Daemon, StartError, stop_all
from .procs import WaitTimeout, cmdline, wait_for
from .sandbox import DEMO_LAYOUT, Sandbox, load_master, load_minion, script_command

CHECKOUT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MINIONS = ("web1", "web2", "db1")
MARKER = ".rx-demo"          # only a directory holding this file is ever deleted
SOCK_PARENT = ".sock_parent"  # names the short sock dir in /tmp, when one was needed
MASTER_DEADLINE = 15.0       # seconds for the master to open its sockets
KEYS_DEADLINE = 30.0         # seconds for the minion keys to show up as pending
PING_DEADLINE = 60.0         # seconds for every minion to answer test.ping
STOP_DEADLINE = 15.0         # seconds a daemon gets to exit after SIGTERM
DAEMON_NAMES = ("rx-master", "rx-minion", "rx-api", "rx.master.daemon", "rx.minion.daemon", "rx.api.daemon")
DEMO_USER = "demo"
PASSWORD_FILE = "dashboard-password"  # the demo user's password, 0600, shown at the end
USERS_FILE = "eauth-users"            # the `file` eauth back end's hashed passwords

T = TypeVar("T")


class DemoError(Exception):
    """The demo cannot go on; the message says why."""


class Interrupted(Exception):
    """A signal asked us to stop; `code` is the exit status to use."""

    def __init__(self, code: int) -> None:
        super().__init__(f"interrupted (exit {code})")
        self.code = code


def say(msg: str) -> None:
    """A step heading, on stdout."""
    print(f"\n==> {msg}", flush=True)


def note(msg: str) -> None:
    """A detail of the current step, on stderr."""
    print(f"    {msg}", file=sys.stderr, flush=True)


def shown(path: str | Path) -> str:
    """`path` as the user would type it from here (relative when under the current directory)."""
    text, here = str(path), os.getcwd() + "/"
    return text[len(here):] if text.startswith(here) else text


def demo_dir() -> Path:
    """$DEMO_DIR (relative to the current directory) or <checkout>/.demo."""
    return Path(os.path.abspath(os.environ.get("DEMO_DIR") or CHECKOUT / ".demo"))


def port(var: str, default: int) -> int:
    """The port number in environment variable `var` (else `default`)."""
    text = os.environ.get(var) or str(default)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise DemoError(f"{var} must be a port number, not {text!r}")
    return int(text)


def sandbox(demo: Path) -> Sandbox:
    """The demo's sandbox: fixed ports, the DEMO_LAYOUT under `demo`, the venv's commands, daemons detached."""
    return Sandbox(demo, layout=DEMO_LAYOUT, pub_port=port("DEMO_PUB_PORT", 24505),
                   ret_port=port("DEMO_RET_PORT", 24506), master_defaults={"worker_processes": 2, "log_level": "info"},
                   minion_defaults={"log_level": "info"}, command=functools.partial(script_command, bin_dir=BIN),
                   detach=True, deadline=MASTER_DEADLINE, comment="written by `make demo`, which rebuilds it")


def daemons_of(demo: Path) -> list[tuple[str, str, Path]]:
    """(name, pidfile, log) of the sandbox's minions, then rx-api and the master, from their config files."""
    out = []
    for conf in sorted(demo.glob("*/minion")):
        cfg = load_minion(conf.parent)
        out.append((f"rx-minion {cfg.id}", cfg.pidfile, Path(cfg.log_file)))
    master_dir = demo / DEMO_LAYOUT.master_conf
    if (master_dir / "master").exists():
        cfg = load_master(master_dir)
        out.append(("rx-api", cfg.api_pidfile, Path(cfg.api_log_file)))
        out.append(("rx-master", cfg.pidfile, Path(cfg.log_file)))
    return out


# ---------------------------------------------------------------- stop and clean

def stop(demo: Path) -> None:
    """Stop the sandbox's daemons by their pidfiles: SIGTERM, then SIGKILL of the process group."""
    if not demo.is_dir():
        print(f"No sandbox at {demo}: nothing to stop.")
        return
    running = []
    for name, pidfile, log in daemons_of(demo):
        d = Daemon.attach(name, pidfile, log)
        if d is None:
            continue
        if not d.alive():
            Path(pidfile).unlink(missing_ok=True)
            note(f"{name}: not running (removed stale pidfile)")
        elif not any(n in cmdline(d.pid) for n in DAEMON_NAMES):
            Path(pidfile).unlink(missing_ok=True)
            note(f"{name}: pid {d.pid} is not an rx daemon ({cmdline(d.pid)}); leaving it alone")
        else:
            running.append(d)
    if not running:
        print("No sandbox daemons running.")
        return
    stop_all(running, STOP_DEADLINE, report=note)
    print("Sandbox stopped.")


def clean(demo: Path) -> None:
    """Stop, then remove the sandbox directory (only one this script made) and its sock dir in /tmp."""
    stop(demo)
    if not demo.is_dir():
        return
    if not (demo / MARKER).is_file():
        raise DemoError(f"{demo} was not made by this script (no {MARKER} in it); not removing it")
    parent_file = demo / SOCK_PARENT
    sock_parent = Path(parent_file.read_text().strip()) if parent_file.is_file() else None
    shutil.rmtree(demo)
    if (sock_parent is not None and sock_parent.name.startswith("rx-demo-") and sock_parent.parent == Path("/tmp")
            and sock_parent.is_dir() and not sock_parent.is_symlink() and sock_parent.stat().st_uid == os.getuid()):
        shutil.rmtree(sock_parent)
    print(f"Removed {shown(demo)}.")


# ---------------------------------------------------------------- start

def short_sock_dir(demo: Path, box: Sandbox) -> str | None:
    """None when the master's default sock_dir fits AF_UNIX paths; else a short private one in /tmp."""
    box.write_master_config()
    try:
        box.cfg
        return None
    except ConfigError as exc:
        if exc.key != "sock_dir":
            raise DemoError(str(exc)) from None
    digest = hashlib.sha256(str(demo).encode()).hexdigest()[:12]
    parent = Path(f"/tmp/rx-demo-{os.getuid()}-{digest}")
    parent.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(parent)
    if parent.is_symlink() or st.st_uid != os.getuid():
        raise DemoError(f"{parent} exists but is not a directory owned by you; remove it")
    os.chmod(parent, 0o700)
    (demo / SOCK_PARENT).write_text(f"{parent}\n")
    note("the checkout path makes the master's IPC socket paths longer than AF_UNIX allows;")
    note(f"using sock_dir {parent}/master instead")
    return f"{parent}/master"


def run_shown(*argv: str) -> None:
    """Print a command the way you would type it, then run it (the venv's script); fail if it fails."""
    print(f"\n$ {shlex.join(argv)}", flush=True)
    code = subprocess.run([str(BIN / argv[0]), *argv[1:]], stdin=subprocess.DEVNULL).returncode
    if code != 0:
        raise DemoError(f"`{shlex.join(argv)}` exited with {code}")


def json_of(box: Sandbox, prog: str, *args: str) -> dict:
    """Run an rx command with `--out json`; returns its document ({} if it printed none)."""
    try:
        doc = json.loads(box.run_cli(prog, *args, "--out", "json").stdout)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def pending(box: Sandbox) -> set[str]:
    """The demo minions whose key waits to be accepted (`rx-key -L`)."""
    return set(MINIONS) & set(json_of(box, "rx-key", "-L").get("pending", []))


def answering(box: Sandbox) -> set[str]:
    """The minions that answer `rx '*' test.ping -t 2` with True."""
    return {m for m, v in json_of(box, "rx", "*", "test.ping", "-t", "2").items() if v is True}


def poll(box: Sandbox, what: str, deadline: float, probe: Callable[[], T], done: Callable[[T], bool],
         show: Callable[[T], str] = str) -> T:
    """Call `probe()` until `done` says yes, noting each new value; fail when a minion died or time ran out."""
    seen: list[str] = []

    def check() -> T | None:
        value = probe()
        if not seen or show(value) != seen[-1]:
            seen.append(show(value))
            note(f"{what}: {seen[-1]}")
        dead = [m for m, d in box.minions.items() if not d.alive()]
        if dead:
            raise DemoError(f"rx-minion {dead[0]} exited (its log is below)")
        return value if done(value) else None
    try:
        return wait_for(check, deadline, what=what, interval=0.2)
    except WaitTimeout:
        raise DemoError(f"not done within {deadline:g}s ({what}: {seen[-1] if seen else 'nothing yet'})") from None


def build(demo: Path) -> Sandbox:
    """A fresh sandbox directory with its configs written."""
    if demo.exists():
        say("Stopping and removing the previous sandbox")
        clean(demo)
    box = sandbox(demo)
    say(f"Building the sandbox in {shown(demo)}/ (master on 127.0.0.1:{box.pub_port}/{box.ret_port}, "
        f"minions {' '.join(MINIONS)})")
    demo.mkdir(parents=True)
    (demo / MARKER).touch()
    sock_dir = short_sock_dir(demo, box)
    if sock_dir:
        box.master_defaults["sock_dir"] = sock_dir
    box.master_defaults.update({
        "api_port": port("DEMO_API_PORT", 28000),
        "api_enable_clients": ["local", "local_async", "local_batch", "local_subset", "runner", "runner_async",
                               "wheel"],
        "external_auth": {"file": {"^filename": str(demo / USERS_FILE), DEMO_USER: [".*", "@runner", "@wheel"]}}})
    box.write_master_config()
    for m in MINIONS:
        box.write_minion_config(m)
    return box


def bring_up(box: Sandbox) -> None:
    """Start the daemons, accept the keys and show that the sandbox answers."""
    say("Starting rx-master -d")
    try:
        master = box.start_master()
    except StartError as exc:
        raise DemoError(f"{exc}\n    If a port is taken, pick others: make demo DEMO_PUB_PORT=34505 "
                        "DEMO_RET_PORT=34506") from None
    note(f"rx-master running, pid {master.pid}")

    say(f"Starting {len(MINIONS)} minions: rx-minion -d")
    for m in MINIONS:
        box.start_minion(m, accept=False, wait=False)

    say(f"Waiting for the {len(MINIONS)} minion keys to arrive (rx-key -L)")
    poll(box, "pending", KEYS_DEADLINE, lambda: pending(box), lambda ids: len(ids) == len(MINIONS),
         show=lambda ids: f"{len(ids)}/{len(MINIONS)}")
    run_shown("rx-key", "-L")

    say("Accepting them (in real life: compare each fingerprint from `rx-key -F` with the minion's log first)")
    run_shown("rx-key", "-A", "-y")

    say("Waiting for every minion to authenticate and answer (rx '*' test.ping -t 2 --out json)")
    poll(box, "answered", PING_DEADLINE, lambda: answering(box), lambda ids: ids >= set(MINIONS),
         show=lambda ids: " ".join(sorted(ids)) or "none yet")

    say("The sandbox works:")
    run_shown("rx", "*", "test.ping")
    run_shown("rx", "*", "cmd.run", "uname -a")

    say(f"Starting rx-api -d (REST API and dashboard) with a `{DEMO_USER}` user (file eauth, random password)")
    add_demo_user(box.root)
    cfg = box.cfg
    try:
        api = Daemon.detach("rx-api", [*box.command("rx-api"), "-c", str(box.master_dir)], cfg.api_pidfile,
                            Path(cfg.api_log_file), timeout=MASTER_DEADLINE)
    except StartError as exc:
        raise DemoError(f"{exc}\n    If the port is taken, pick another: make demo DEMO_API_PORT=38000") from None
    note(f"rx-api running, pid {api.pid}, on http://127.0.0.1:{cfg.api_port}/")


def add_demo_user(demo: Path) -> None:
    """The demo user with a fresh random password: hashed in the eauth file, in clear in a 0600 file to show."""
    password = secrets.token_urlsafe(12)
    done = subprocess.run([sys.executable, "-m", "rx.master.auth", "--add-user", DEMO_USER, "--file",
                           str(demo / USERS_FILE), "--password-stdin"], input=password + "\n", capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise DemoError(f"could not add the demo user: {done.stderr.strip()}")
    fd = os.open(demo / PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")


def how_to_use(box: Sandbox) -> str:
    """What to type to keep using the sandbox."""
    d = shown(box.root)
    minion_log = shown(load_minion(box.minion_dir(MINIONS[0])).log_file).replace(f"/{MINIONS[0]}/", "/<minion>/")
    return f"""
==> The sandbox keeps running. To use it from your shell:

    . {shlex.quote(str(BIN / "activate"))}
    export RX_CONFIG_DIR={shlex.quote(str(box.master_dir))}
    rx '*' test.ping
    rx -L web1,db1 grains.item os num_cpus
    rx 'web*' cmd.run 'id -un' --out json
    rx-key -L
    rx-run jobs.list_jobs

    Dashboard and REST API (salt-api's routes): http://127.0.0.1:{box.cfg.api_port}/
              user `{DEMO_USER}`, eauth `file`, password: {(box.root / PASSWORD_FILE).read_text().strip()}
              (also in {shown(box.root / PASSWORD_FILE)})

    Configs:  {shown(box.master_dir / "master")}, {d}/{{{','.join(MINIONS)}}}/minion
    Logs:     {shown(box.cfg.log_file)}, {minion_log}

Stop it with `make stop`; `make clean-demo` also removes {d}/."""


def show_logs(demo: Path) -> None:
    """The last lines of every daemon's log, on stderr."""
    for _name, _pidfile, log in daemons_of(demo):
        if log.is_file() and log.stat().st_size:
            print(f"\n--- last lines of {shown(log)}", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-12:]), file=sys.stderr)


def start(demo: Path) -> int:
    """Build and start the sandbox; on failure show the logs and stop what was started.  Returns the exit status."""
    if not (BIN / "rx-master").exists():
        raise DemoError(f"no {BIN}/rx-master: run `make demo` (it creates .venv first)")
    box = build(demo)
    os.environ["RX_CONFIG_DIR"] = str(box.master_dir)
    try:
        bring_up(box)
    except (DemoError, StartError, WaitTimeout, ConfigError, subprocess.SubprocessError) as exc:
        print(f"\ndemo: error: {exc}", file=sys.stderr)
        show_logs(demo)
        print(f"\ndemo: failed; stopping what was started (logs stay under {shown(demo)})", file=sys.stderr)
        code = 1
    except (KeyboardInterrupt, Interrupted) as exc:
        print(f"\ndemo: interrupted; stopping what was started (files stay under {shown(demo)})", file=sys.stderr)
        code = exc.code if isinstance(exc, Interrupted) else 130
    else:
        print(how_to_use(box))
        return 0
    sys.stdout.flush()
    with contextlib.redirect_stdout(sys.stderr):
        stop(demo)
    return code


def _raise_interrupted(signum: int, _frame: Any) -> NoReturn:
    raise Interrupted(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ("start", "stop", "clean"):
        print("usage: python -m tests.support.demo start|stop|clean", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupted)
    demo = demo_dir()
    try:
        if args[0] == "start":
            return start(demo)
        if args[0] == "stop":
            stop(demo)
            if demo.is_dir():
                print(f"Files kept in {shown(demo)}/ (`make demo` rebuilds it, `make clean-demo` removes it).")
        else:
            clean(demo)
    except (DemoError, ConfigError) as exc:
        print(f"\ndemo: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted) as exc:
        return exc.code if isinstance(exc, Interrupted) else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
