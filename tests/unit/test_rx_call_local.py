"""`rx-call --local` stays light: it loads neither zmq nor cryptography (it talks to nobody)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
sys.argv = ["rx-call", "--local", "test.ping", "--out", "json"]
from rx.client import call
try:
    call.main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "zmq": "zmq" in sys.modules, "cryptography": "cryptography" in sys.modules}),
      file=sys.stderr)
"""


def test_local_call_loads_no_transport(tmp_path):
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                       env={"RX_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert list(json.loads(r.stdout).values()) == [True], r.stderr
    assert json.loads(r.stderr.strip().splitlines()[-1]) == {"code": 0, "zmq": False, "cryptography": False}
