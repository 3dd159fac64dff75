"""`rx-call --local` stays light: it loads neither zmq nor cryptography (it talks to nobody), and computes
the grains only for a function that reads them."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
sys.argv = ["rx-call", "--local", *sys.argv[1:], "--out", "json"]
from rx.client import call
try:
    call.main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "zmq": "zmq" in sys.modules, "cryptography": "cryptography" in sys.modules,
                  "grains": "rx.minion.grains" in sys.modules}), file=sys.stderr)
"""


def _probe(tmp_path, *call: str) -> tuple[object, dict]:
    r = subprocess.run([sys.executable, "-c", PROBE, *call], capture_output=True, text=True, timeout=60,
                       env={"RX_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    return list(json.loads(r.stdout).values())[0], json.loads(r.stderr.strip().splitlines()[-1])


def test_local_call_loads_no_transport_and_no_grains(tmp_path):
    assert _probe(tmp_path, "test.ping") == (True, {"code": 0, "zmq": False, "cryptography": False,
                                                    "grains": False})


def test_grains_are_computed_for_a_function_that_reads_them(tmp_path):
    value, seen = _probe(tmp_path, "grains.items")
    assert seen["code"] == 0 and seen["grains"] is True
    assert value["kernel"] == "Linux" and isinstance(value["num_cpus"], int)
    assert _probe(tmp_path, "grains.get", "kernel")[0] == "Linux"
