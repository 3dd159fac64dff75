"""The `pam` back end: the host's PAM stack (service `login`, as Salt's default) through python-pam.

python-pam is needed only here and imported on first use; `pip install rx[pam]` (or Debian's
python3-pam is NOT the same module: use the PyPI package).  PAM's pam_unix reads /etc/shadow, so the
process that takes logins (the master's user-socket relay, rx-api) must run as root or as a user in
the `shadow` group; otherwise every login fails (and says why in the master's log).  root itself
never logs in through PAM (as in Salt).  Groups are the user's OS groups.
"""

from __future__ import annotations

import logging
import threading

from rx.master.auth import os_groups

log = logging.getLogger("rx.master.auth")

SERVICE = "login"


class PamBackend:
    def __init__(self, service: str = SERVICE) -> None:
        self.service = service
        self._lock = threading.Lock()  # python-pam's handle is not shared between threads

    def authenticate(self, username: str, password: str) -> bool:
        if username == "root" or not password:
            return False
        try:
            import pam
        except ImportError:
            log.error("eauth pam: python-pam is not installed (pip install python-pam); no PAM login can succeed")
            return False
        with self._lock:
            handle = pam.pam()
            try:
                ok = bool(handle.authenticate(username, password, service=self.service, resetcreds=False))
            except ValueError:  # a NUL in the name or password
                return False
        if not ok and handle.code not in (7, 10):  # PAM_AUTH_ERR, PAM_USER_UNKNOWN: a plain refusal
            log.warning("eauth pam: %s for %r (is this process root or in the shadow group?)", handle.reason, username)
        return ok

    def groups(self, username: str) -> list[str]:
        return os_groups(username)
