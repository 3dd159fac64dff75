"""A maintenance script written for Salt's LocalClient, ported to rx by changing its import line only.

tests/integration/test_localclient_contract.py runs it on rx and compares what it prints with what it
printed on Salt 3007 (recorded by tests/support/salt_shapes.py, which runs this very file with the
import line put back to `from salt.client import LocalClient`).

usage: python salt_script.py MASTER_CONFIG_FILE
"""

import sys

from rx.client import LocalClient


def main(c_path):
    local = LocalClient(c_path)
    try:
        # Who is up?  A minion that does not answer is False.
        ping = local.cmd("*", "test.ping", timeout=2, gather_job_timeout=1)
        up = sorted(m for m, ok in ping.items() if ok is True)
        print("up:", up, "down:", sorted(m for m, ok in ping.items() if ok is False))

        # Keyword arguments, the three ways.
        print("cwd:", sorted(local.cmd(up, "cmd.run", ["pwd", "cwd=/tmp"], tgt_type="list").items()))
        print("cwd:", sorted(local.cmd(up, "cmd.run", ["pwd"], tgt_type="list", kwarg={"cwd": "/"}).items()))
        print("cwd:", local.cmd("m1", "cmd.run", ["pwd", {"__kwarg__": True, "cwd": "/tmp"}]))

        # Failures are told by the retcode.
        full = local.cmd(up, "cmd.run_all", ["false"], tgt_type="list", full_return=True)
        print("retcodes:", sorted((m, r["retcode"], r["ret"]["retcode"], r["ret"]["stdout"]) for m, r in full.items()))
        full = local.cmd(up, "test.retcode", [3], tgt_type="list", full_return=True)
        print("retcodes:", sorted((m, r["retcode"], r["ret"]) for m, r in full.items()))
        print("unknown function:", local.cmd("m1", "test.no_such_function"))

        # Fire and forget, then collect.
        jid = local.cmd_async(up, "test.echo", ["later"], tgt_type="list")
        later = {}
        for chunk in local.get_cli_returns(jid, up, timeout=10):
            for minion, data in chunk.items():
                later[minion] = data["ret"]
        print("later:", sorted(later.items()))

        job = local.run_job("m1", "test.echo", ["x"])
        print("run_job:", sorted(job), job["minions"])
        print("nothing matched:", local.run_job("nosuch*", "test.ping"), local.cmd_async("nosuch*", "test.ping"),
              local.cmd("nosuch*", "test.ping"))

        # Stream the returns, the missing minions last.
        seen = {}
        for chunk in local.cmd_iter("m*", "test.echo", ["it"], timeout=2, expect_minions=True,
                                    gather_job_timeout=1):
            for minion, data in chunk.items():
                seen[minion] = "failed" if data.get("failed") else (data["ret"], data["retcode"])
        print("cmd_iter:", sorted(seen.items()))

        polled = [item for item in local.cmd_iter_no_block(up, "test.sleep", [1], tgt_type="list")]
        print("no_block:", None in polled, sorted(m for item in polled if item for m in item))

        # A rolling batch, one minion at a time, and a random subset.
        batch = [item for item in local.cmd_batch(up, "test.echo", ["b"], tgt_type="list", batch=1)]
        print("batch:", sorted(m for item in batch for m in item), [v for item in batch for v in item.values()])
        subset = local.cmd_subset(up, "test.ping", tgt_type="list", subset=1)
        print("subset:", len(subset), list(subset.values()))
    finally:
        local.destroy()


if __name__ == "__main__":
    main(sys.argv[1])
