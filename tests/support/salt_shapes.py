"""Record what Salt's LocalClient returns, for rx's LocalClient contract test (run by hand, not in CI):

    .venv/bin/python -m tests.support.salt_shapes [--venv PATH]

Starts a Salt master with minions m1, m2 and m3 in a sandbox (bench/salt_compare.py; Salt installed in
bench/.salt/venv by `python -m bench.salt_compare --install-only`, or the venv given), stops m3, then runs
with Salt's interpreter the scenarios of tests/support/lc_contract.py and the script
tests/integration/data/salt_script.py (its import line put back to Salt's), and writes what they gave to
tests/integration/data/salt_localclient.json.  Salt prints "No minions matched the target ..." on stdout
where rx prints nothing; those lines are left out of the script's recorded output.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import bench.salt_compare as salt_compare

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = Path(__file__).resolve().parent / "lc_contract.py"
SCRIPT = ROOT / "tests" / "integration" / "data" / "salt_script.py"
RECORD = ROOT / "tests" / "integration" / "data" / "salt_localclient.json"
RX_IMPORT = "from rx.client import LocalClient"
SALT_IMPORT = "from salt.client import LocalClient"
SALT_NOTICE = "No minions matched the target."


def record(venv: Path) -> dict:
    salt_compare.BIN = venv / "bin"
    python = str(venv / "bin" / "python")
    box = salt_compare.SaltSandbox(workers=2)
    try:
        box.start_master()
        box.start_minions(["m1", "m2", "m3"])
        box.minions["m3"].stop()
        c_path = str(box.master_dir / "master")
        out = box.root / "contract.json"
        cp = subprocess.run([python, str(CONTRACT), "--client", "salt.client", "--c-path", c_path, "--out", str(out)],
                            capture_output=True, text=True, timeout=1800)
        if cp.returncode != 0:
            raise SystemExit(f"the contract scenarios failed on Salt:\n{cp.stderr[-3000:]}")
        result = json.loads(out.read_text())
        source = SCRIPT.read_text()
        if source.count(RX_IMPORT) != 1:
            raise SystemExit(f"{SCRIPT} must hold the line {RX_IMPORT!r} once")
        script = box.root / "salt_script.py"
        script.write_text(source.replace(RX_IMPORT, SALT_IMPORT))
        cp = subprocess.run([python, str(script), c_path], capture_output=True, text=True, timeout=600)
        if cp.returncode != 0:
            raise SystemExit(f"the script failed on Salt:\n{cp.stderr[-3000:]}")
        stdout = "".join(line for line in cp.stdout.splitlines(keepends=True) if not line.startswith(SALT_NOTICE))
        versions = subprocess.run([python, "-c", "import salt.version; print(salt.version.__version__)"],
                                  capture_output=True, text=True).stdout.strip()
        return {"salt": versions, "scenarios": result["scenarios"], "signatures": result["signatures"],
                "script": {"stdout": stdout}}
    finally:
        box.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tests.support.salt_shapes", description=__doc__.splitlines()[0])
    p.add_argument("--venv", type=Path, default=salt_compare.VENV, help="Salt's venv (default: %(default)s)")
    args = p.parse_args(argv)
    if not (args.venv / "bin" / "salt-master").exists():
        sys.exit(f"no Salt in {args.venv}: python -m bench.salt_compare --install-only, or give --venv")
    data = record(args.venv)
    RECORD.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORD.relative_to(ROOT)}: {len(data['scenarios'])} scenarios, Salt {data['salt']}")


if __name__ == "__main__":
    main()
