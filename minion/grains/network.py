"""Network grains: interfaces and their addresses (read from the kernel over rtnetlink, no
subprocess), default gateways (/proc/net), resolver settings (/etc/resolv.conf), and the names
that need a resolver (fqdn, fqdn_ip4/6, fqdns), looked up in parallel within a time budget so a
dead DNS server cannot hold up the minion's start."""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import threading
import time
from collections import deque
from typing import Any, Callable

log = logging.getLogger(__name__)

DNS_BUDGET = 1.0
"""seconds the resolver lookups of one grains computation may take in all; the ones that have not
answered by then are left out (fqdn falls back to the host name), with a warning"""
DNS_WORKERS = 8

_NLMSG = struct.Struct("=LHHLL")        # nlmsghdr: len, type, flags, seq, pid
_RTA = struct.Struct("=HH")             # rtattr: len, type
_IFINFO = struct.Struct("=BxHiII")      # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBi")       # ifaddrmsg: family, prefixlen, flags, scope, index
RTM_GETLINK, RTM_GETADDR = 18, 22
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFLA_ADDRESS, IFLA_IFNAME = 1, 3
IFA_ADDRESS, IFA_LOCAL = 1, 2
RECV_BYTES = 1 << 18


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attrs(buf: bytes, off: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while off + _RTA.size <= len(buf):
        length, kind = _RTA.unpack_from(buf, off)
        if length < _RTA.size:
            break
        out[kind & 0x3FFF] = buf[off + _RTA.size:off + length]
        off += _align(length)
    return out


def _dump(sock: socket.socket, msg_type: int, body: bytes, seq: int) -> list[bytes]:
    """The payloads of one rtnetlink dump request."""
    sock.send(_NLMSG.pack(_NLMSG.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
    out: list[bytes] = []
    while True:
        data = sock.recv(RECV_BYTES)
        off = 0
        while off + _NLMSG.size <= len(data):
            length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, off)
            if length < _NLMSG.size or kind == NLMSG_DONE:
                return out
            if kind == NLMSG_ERROR:
                raise OSError("rtnetlink answered an error")
            out.append(data[off + _NLMSG.size:off + length])
            off += _align(length)
        if not data:
            return out


def _mac(raw: bytes) -> str | None:
    return ":".join(f"{b:02x}" for b in raw) if len(raw) in (6, 8, 20) else None


def read_interfaces() -> dict[str, dict[str, Any]]:
    """{name: {"hwaddr": "aa:bb:..." or None, "inet": [...], "inet6": [...]}} for every interface,
    from the kernel (rtnetlink): every address, secondary ones included."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(2.0)
        sock.bind((0, 0))
        names: dict[int, str] = {}
        out: dict[str, dict[str, Any]] = {}
        for payload in _dump(sock, RTM_GETLINK, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0), 1):
            _fam, _type, index, _flags, _change = _IFINFO.unpack_from(payload)
            attrs = _attrs(payload, _IFINFO.size)
            name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace")
            if name:
                names[index] = name
                out[name] = {"hwaddr": _mac(attrs.get(IFLA_ADDRESS, b"")), "inet": [], "inet6": []}
        for payload in _dump(sock, RTM_GETADDR, _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0), 2):
            family, _plen, _flags, _scope, index = _IFADDR.unpack_from(payload)
            attrs = _attrs(payload, _IFADDR.size)
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            name = names.get(index)
            if raw is None or name is None or family not in (socket.AF_INET, socket.AF_INET6):
                continue
            out[name]["inet" if family == socket.AF_INET else "inet6"].append(socket.inet_ntop(family, raw))
    return out


def _ip_sorted(addrs: Any) -> list[str]:
    return sorted(set(addrs), key=ipaddress.ip_address)


def interface_grains(ifaces: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """ip4_interfaces, ip6_interfaces, ip_interfaces, hwaddr_interfaces, ipv4, ipv6 in Salt's shapes."""
    v4 = {name: list(i["inet"]) for name, i in ifaces.items()}
    v6 = {name: list(i["inet6"]) for name, i in ifaces.items()}
    return {
        "ip4_interfaces": v4,
        "ip6_interfaces": v6,
        "ip_interfaces": {name: v4[name] + v6[name] for name in ifaces},
        "hwaddr_interfaces": {name: i["hwaddr"] for name, i in ifaces.items() if i["hwaddr"]},
        "ipv4": _ip_sorted(a for addrs in v4.values() for a in addrs),
        "ipv6": _ip_sorted(a for addrs in v6.values() for a in addrs),
    }


def gateways(route: str, ipv6_route: str) -> dict[str, Any]:
    """ip4_gw, ip6_gw (the default gateway, or False) and ip_gw (either exists), from the text of
    /proc/net/route and /proc/net/ipv6_route."""
    gw4: str | bool = False
    for line in route.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 8 and cols[1] == "00000000" and cols[7] == "00000000" and int(cols[3], 16) & 0x2:
            gw4 = socket.inet_ntop(socket.AF_INET, struct.pack("<L", int(cols[2], 16)))
            break
    gw6: str | bool = False
    for line in ipv6_route.splitlines():
        cols = line.split()
        if len(cols) >= 10 and cols[0] == "0" * 32 and cols[1] == "00" and cols[4] != "0" * 32:
            gw6 = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(cols[4]))
            break
    return {"ip_gw": bool(gw4 or gw6), "ip4_gw": gw4, "ip6_gw": gw6}


def resolv_conf(text: str) -> dict[str, Any]:
    """The `dns` grain from the text of /etc/resolv.conf (Salt's keys)."""
    dns: dict[str, Any] = {"nameservers": [], "ip4_nameservers": [], "ip6_nameservers": [], "sortlist": [],
                           "domain": "", "search": [], "options": []}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2:
            continue
        key, rest = words[0], words[1:]
        if key == "nameserver":
            try:
                addr = ipaddress.ip_address(rest[0].split("%", 1)[0])
            except ValueError:
                continue
            dns["nameservers"].append(rest[0])
            dns["ip4_nameservers" if addr.version == 4 else "ip6_nameservers"].append(rest[0])
        elif key == "domain":
            dns["domain"] = rest[0]
        elif key in ("search", "sortlist", "options"):
            dns[key] = rest
    return dns


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _bounded(jobs: dict[str, Callable[[], Any]], budget: float) -> dict[str, Any]:
    """Run the lookups on a few daemon threads; the answers that came within `budget` seconds (a
    lookup that failed answers None; one still running is left out, and never holds up an exit)."""
    if not jobs:
        return {}
    todo = deque(jobs.items())
    done: dict[str, Any] = {}

    def work() -> None:
        while True:
            try:
                key, fn = todo.popleft()
            except IndexError:
                return
            try:
                done[key] = fn()
            except Exception:  # a lookup that fails has no answer; it never ends the worker
                done[key] = None

    threads = [threading.Thread(target=work, name="rx-grains-dns", daemon=True)
               for _ in range(min(DNS_WORKERS, len(jobs)))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + budget
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    answered = dict(done)
    late = sorted(set(jobs) - set(answered))
    if late:
        log.warning("grains: no answer from the resolver within %gs for %s: left out", budget, ", ".join(late))
    return answered


def _canonical(hostname: str) -> tuple[str, list[str], list[str]]:
    """What `hostname -f` says (the canonical name of a forward lookup of the host name), and its
    IPv4 and IPv6 addresses."""
    infos = socket.getaddrinfo(hostname, None, 0, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
    fqdn = next((i[3] for i in infos if i[3]), hostname)
    addrs = socket.getaddrinfo(fqdn, None, 0, socket.SOCK_STREAM)
    return (fqdn, _ip_sorted(a[4][0] for a in addrs if a[0] == socket.AF_INET),
            _ip_sorted(a[4][0].split("%", 1)[0] for a in addrs if a[0] == socket.AF_INET6))


def _reverse(addr: str) -> str:
    return socket.gethostbyaddr(addr)[0]


def name_grains(hostname: str, addresses: list[str], *, fqdns: bool = True, budget: float = DNS_BUDGET) -> dict:
    """fqdn, host, domain, fqdn_ip4, fqdn_ip6 and (with `fqdns`) the names the host's non-loopback,
    non-link-local addresses resolve back to."""
    jobs: dict[str, Callable[[], Any]] = {"fqdn": lambda: _canonical(hostname)}
    if fqdns:
        for addr in addresses:
            ip = ipaddress.ip_address(addr)
            if not (ip.is_loopback or ip.is_link_local):
                jobs[addr] = lambda a=addr: _reverse(a)
    answers = _bounded(jobs, budget)
    fqdn, ip4, ip6 = answers.get("fqdn") or (hostname, [], [])
    host, _, domain = fqdn.partition(".")
    out = {"fqdn": fqdn, "host": host, "domain": domain, "fqdn_ip4": ip4, "fqdn_ip6": ip6}
    if fqdns:
        out["fqdns"] = sorted({name for key, name in answers.items() if key != "fqdn" and name})
    else:
        out["fqdns"] = []
    return out


def network_grains(*, fqdns: bool = True) -> dict[str, Any]:
    """Every network grain of this host."""
    try:
        ifaces = read_interfaces()
    except OSError as exc:
        log.warning("grains: cannot list the network interfaces over rtnetlink: %s", exc)
        ifaces = {}
    grains = interface_grains(ifaces)
    grains.update(gateways(_read("/proc/net/route"), _read("/proc/net/ipv6_route")))
    grains["dns"] = resolv_conf(_read("/etc/resolv.conf"))
    hostname = socket.gethostname()
    grains["localhost"] = hostname
    grains.update(name_grains(hostname, grains["ipv4"] + grains["ipv6"], fqdns=fqdns))
    return grains
