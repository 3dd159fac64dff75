"""Where a master process spends its CPU: py-spy samples it, and the samples are summarised by code.

py-spy (installed from PyPI: `pip install py-spy`, or `.[bench]`) attaches to a running process
without stopping it (`--nonblocking`) and records the Python stack of its threads that are running or
runnable (one waiting in epoll or for a lock is not sampled), so a function's share of the samples is
about its share of the process's CPU.  On a busy machine a thread just woken waits for a CPU as runnable:
the event loop's `select` then takes more samples than the CPU it uses.  C code (libzmq, SQLite, OpenSSL)
counts to the Python line that called it; zmq's own I/O thread is not sampled (its CPU is in the
per-process figures).

    summary = Profiler.start(pid).stop()   # {"samples", "rate", "own": [...], "cumulative": [...], "modules": [...]}
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

RATE = 250
"""Samples per second."""
TOP = 15
TRIVIAL = 0.97
"""A frame on at least this share of its thread's samples (and never running itself) is left out of the
cumulative list: it is the thread's scaffolding."""
NATIVE_ENV = "RX_BENCH_NATIVE_PROFILE"
"""With this set, C frames are sampled too (libzmq, SQLite, OpenSSL: py-spy --native, which pauses the process
for each sample, so it runs slower while sampled)."""
KEEP_ENV = "RX_BENCH_KEEP_PROFILE"
"""With this set to a path, the raw stacks (py-spy's collapsed format, with line numbers) are kept there."""
_FRAME = re.compile(r"^(?P<fun>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_ROOT = str(Path(__file__).resolve().parent.parent) + os.sep


def py_spy() -> str | None:
    """The py-spy next to this interpreter, or on PATH."""
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy recording one process until `stop`."""

    def __init__(self, pid: int, proc: subprocess.Popen | None, out: Path, why: str = "") -> None:
        self.pid, self.proc, self.out, self.why = pid, proc, out, why
        self.t0 = time.monotonic()

    @classmethod
    def start(cls, pid: int, rate: int = RATE) -> "Profiler":
        out = Path(tempfile.mkdtemp(prefix="rx-prof-")) / "stacks.txt"
        exe = py_spy()
        if exe is None:
            return cls(pid, None, out, "py-spy is not installed (pip install py-spy)")
        how = ["--native"] if os.environ.get(NATIVE_ENV) else ["--nonblocking"]
        proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(rate), *how, "--full-filenames",
                                 "--format", "raw", "--output", str(out), "--duration", "3600"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)  # attached
        if proc.poll() is not None:
            return cls(pid, None, out, f"py-spy failed: {(proc.stderr.read() if proc.stderr else '')[-300:]}")
        return cls(pid, proc, out)

    def stop(self) -> dict:
        """Stop sampling; the summary (or why there is none)."""
        seconds = time.monotonic() - self.t0
        if self.proc is None:
            return {"profiler": "none", "why": self.why}
        self.proc.send_signal(signal.SIGINT)
        try:
            _out, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        try:
            text = self.out.read_text()
            if os.environ.get(KEEP_ENV):
                shutil.copy(self.out, os.environ[KEEP_ENV])
        except OSError:
            return {"profiler": "py-spy", "why": f"no output: {(err or '')[-300:]}"}
        finally:
            shutil.rmtree(self.out.parent, ignore_errors=True)
        return {"profiler": "py-spy", "rate": RATE, "seconds": round(seconds, 2), **summarise(text)}


def _name(frame: str) -> tuple[str, str]:
    """(function, file) of a py-spy frame `fun (path:line)`, the path relative to the repository or to
    site-packages / the standard library."""
    match = _FRAME.match(frame)
    fun, path = (match["fun"], match["file"]) if match else (frame, "?")
    for marker in ("site-packages/", "lib/python3."):
        i = path.find(marker)
        if i >= 0:
            path = path[i + len(marker):]
            return fun, ("stdlib/" + path.split("/", 1)[-1]) if marker.startswith("lib/") else path
    if path.startswith(_ROOT):
        path = "rx/" + path[len(_ROOT):]
    return fun, path


def summarise(collapsed: str, top: int = TOP) -> dict:
    """Top functions by own samples (the frame that was running) and by cumulative samples (on the stack;
    leaving out the frames under which a thread spends nearly all its samples: `main`, the event loop's
    `run_forever`...), and own samples by file, each as a share of all samples."""
    own: Counter = Counter()
    cum: Counter = Counter()
    files: Counter = Counter()
    roots: Counter = Counter()
    root_of: dict = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_name(f) for f in stack.split(";")]
        own[frames[-1]] += n
        files[frames[-1][1]] += n
        roots[frames[0]] += n
        for fr in set(frames):
            cum[fr] += n
            root_of.setdefault(fr, frames[0])
    for fr in list(cum):
        if cum[fr] >= TRIVIAL * roots[root_of[fr]] and fr not in own:
            del cum[fr]

    def rows(counter: Counter, key: str = "fun") -> list[dict]:
        out = []
        for what, k in counter.most_common(top):
            label = f"{what[0]} ({what[1]})" if isinstance(what, tuple) else what
            out.append({key: label, "samples": k, "share": round(k / total, 4) if total else 0.0})
        return out
    return {"samples": total, "own": rows(own), "cumulative": rows(cum), "modules": rows(files, "file")}


def render(prof: dict | None, title: str) -> list[str]:
    """A RESULTS.md block for one summary."""
    if not prof:
        return []
    if prof.get("profiler") != "py-spy" or "own" not in prof:
        return [f"{title}: no profile ({prof.get('why', '?')}).", ""]
    L = [f"{title}: py-spy, {prof['samples']:,} samples at {prof['rate']} Hz over {prof['seconds']:.1f} s "
         "(samples of the main thread while running or runnable; C code counts to the Python line that called it; "
         "zmq's I/O thread is not sampled).", "",
         "| own % | function (by the frame that was running) | cumulative % | function (anywhere on the stack) |",
         "|---|---|---|---|"]
    for a, b in zip(prof["own"], prof["cumulative"]):
        L.append(f"| {100 * a['share']:.1f} | `{a['fun']}` | {100 * b['share']:.1f} | `{b['fun']}` |")
    L += ["", "Own samples by file: " + ", ".join(f"`{r['file']}` {100 * r['share']:.1f} %"
                                                for r in prof["modules"][:10]) + ".", ""]
    return L
