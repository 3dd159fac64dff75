"""Parsers of the kernel's socket and route tables in /proc/net (pure text in, dicts out), for the
`network` module.  Not a module of its own: it is not in `MODULES` and has no `__all__`."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
              7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}
ESTABLISHED = 1

# route flags (linux/route.h, linux/ipv6_route.h) in the order net-tools' `netstat -rn` prints them
_FLAGS4 = ((0x1, "U"), (0x2, "G"), (0x4, "H"), (0x8, "R"), (0x10, "D"), (0x20, "M"), (0x200, "!"))
_FLAGS6 = ((0x1, "U"), (0x200, "!"), (0x2, "G"), (0x4, "H"), (0x10000, "D"), (0x40000, "A"),
           (0x1000000, "C"), (0x400000, "e"), (0x200000, "n"))


def hex_ip(text: str) -> str:
    """An address as /proc/net writes it (32-bit words in host byte order, in hex) as text."""
    raw = bytes.fromhex(text)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)) if sys.byteorder == "little" else raw
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def parse_sockets(text: str) -> list[dict]:
    """/proc/net/tcp, tcp6, udp or udp6 as [{local_addr, local_port, remote_addr, remote_port,
    state (int), tx_queue, rx_queue, uid, inode}]."""
    out = []
    for line in text.splitlines()[1:]:
        comps = line.split()
        if len(comps) < 10:
            continue
        (laddr, lport), (raddr, rport) = comps[1].split(":"), comps[2].split(":")
        tx, rx = comps[4].split(":")
        out.append({"local_addr": hex_ip(laddr), "local_port": int(lport, 16), "remote_addr": hex_ip(raddr),
                    "remote_port": int(rport, 16), "state": int(comps[3], 16), "tx_queue": int(tx, 16),
                    "rx_queue": int(rx, 16), "uid": int(comps[7]), "inode": int(comps[9])})
    return out


def _flags(value: int, table: tuple) -> str:
    return "".join(letter for bit, letter in table if value & bit)


def parse_route(text: str) -> list[dict]:
    """/proc/net/route (IPv4, the main table) as [{addr_family, destination, gateway, netmask, flags, interface}]."""
    out = []
    for line in text.splitlines()[1:]:
        comps = line.split()
        if len(comps) < 8:
            continue
        out.append({"addr_family": "inet", "destination": hex_ip(comps[1]), "gateway": hex_ip(comps[2]),
                    "netmask": hex_ip(comps[7]), "flags": _flags(int(comps[3], 16), _FLAGS4), "interface": comps[0]})
    return out


def parse_ipv6_route(text: str) -> list[dict]:
    """/proc/net/ipv6_route (every table) as [{addr_family, destination (addr/prefix), gateway,
    netmask "", flags, interface}]."""
    out = []
    for line in text.splitlines():
        comps = line.split()
        if len(comps) < 10:
            continue
        dest = ipaddress.IPv6Address(bytes.fromhex(comps[0]))
        out.append({"addr_family": "inet6", "destination": f"{dest}/{int(comps[1], 16)}",
                    "gateway": str(ipaddress.IPv6Address(bytes.fromhex(comps[4]))), "netmask": "",
                    "flags": _flags(int(comps[8], 16), _FLAGS6), "interface": comps[9]})
    return out


def socket_owners() -> dict[int, tuple[int, str]]:
    """{socket inode: (pid, command name)} for the sockets open in processes this user can see."""
    owners: dict[int, tuple[int, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        name = None
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                if name is None:
                    name = _comm(pid)
                owners.setdefault(int(target[8:-1]), (pid, name))
    return owners


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""
