"""`python -m rx.client.runjob`: runs one background runner job (`rx-run --async`, RunnerClient.cmd_async)
in a session of its own and stores its return in the job store.  The job comes on stdin (msgpack:
config_dir, jid, fun, arg, kwarg, timeout, confirm, limit); the job record exists before this starts.
Logs go to the master's log file when it has one."""

from __future__ import annotations

import asyncio
import sys

from rx.client.runner import AsyncRunnerClient
from rx.config import load_master_config
from rx.logsetup import setup_logging
from rx.transport.codec import decode


def main() -> None:
    spec = decode(sys.stdin.buffer.read())
    cfg = load_master_config(spec["config_dir"])
    setup_logging(cfg.log_level, cfg.log_file, to_stderr=False)
    client = AsyncRunnerClient(cfg)
    asyncio.run(client.run_job(spec["jid"], spec["fun"], list(spec["arg"]), dict(spec["kwarg"]),
                               timeout=spec.get("timeout"), confirm=bool(spec.get("confirm")),
                               limit=spec.get("limit")))


if __name__ == "__main__":
    main()
