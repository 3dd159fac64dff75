"""Network interfaces, addresses, routes and sockets of the minion, and reachability checks.

Interfaces come from `ip -j addr` (iproute2), or from psutil where `ip` is missing or too old;
routes and sockets from /proc/net.  Return shapes follow Salt's `network` module.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import shutil
import socket
import subprocess
from typing import Any

from rx.modules import CommandError, Result
from rx.modules import _procnet

__all__ = ["interfaces", "ip_addrs", "ip_addrs6", "hw_addr", "subnets", "default_route", "routes",
           "active_tcp", "netstat", "ping", "connect", "get_hostname", "dig"]


def _from_ip_json(links: list) -> dict:
    """`ip -j addr show` output as Salt's interfaces shape."""
    ret = {}
    for link in links:
        name = link["ifname"]
        info: dict[str, Any] = {"up": "UP" in link.get("flags", [])}
        if link.get("address") and link.get("link_type") != "none":
            info["hwaddr"] = link["address"]
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                mask = str(ipaddress.IPv4Network(f"0.0.0.0/{a['prefixlen']}").netmask)
                info.setdefault("inet", []).append({"address": a["local"], "netmask": mask,
                                                    "broadcast": a.get("broadcast"), "label": a.get("label", name)})
            elif a.get("family") == "inet6":
                info.setdefault("inet6", []).append({"address": a["local"], "prefixlen": str(a["prefixlen"]),
                                                     "scope": a.get("scope", "global")})
        ret[name] = info
    return ret


def _v6_scope(address: ipaddress.IPv6Address) -> str:
    return "host" if address.is_loopback else "link" if address.is_link_local else \
        "site" if address.is_site_local else "global"


def _from_psutil() -> dict:
    """The same shape from psutil (getifaddrs): an IPv4 alias label `eth0:1` goes under `eth0`."""
    import psutil  # only when asked
    stats = psutil.net_if_stats()
    ret: dict[str, dict] = {}
    for label, addrs in psutil.net_if_addrs().items():
        name = label.split(":")[0]
        info = ret.setdefault(name, {"up": bool(stats.get(name) and stats[name].isup)})
        for a in addrs:
            if a.family == psutil.AF_LINK:
                info["hwaddr"] = a.address
            elif a.family == socket.AF_INET:
                # getifaddrs gives the address itself where the kernel has no broadcast address
                broadcast = a.broadcast if a.broadcast != a.address else None
                info.setdefault("inet", []).append({"address": a.address, "netmask": a.netmask,
                                                    "broadcast": broadcast, "label": label})
            elif a.family == socket.AF_INET6:
                address = ipaddress.IPv6Address(a.address.split("%")[0])
                prefix = bin(int(ipaddress.IPv6Address(a.netmask))).count("1") if a.netmask else 128
                info.setdefault("inet6", []).append({"address": str(address), "prefixlen": str(prefix),
                                                     "scope": _v6_scope(address)})
    return ret


def interfaces() -> dict:
    """Return the network interfaces: {name: {up, hwaddr, inet: [{address, netmask, broadcast,
    label}], inet6: [{address, prefixlen, scope}]}} (inet/inet6 only where it has addresses).

    CLI example: rx '*' network.interfaces
    """
    return _interfaces()


def _interfaces() -> dict:
    if shutil.which("ip"):
        try:
            out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0:
                return _from_ip_json(json.loads(out.stdout))
        except (subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
            pass  # an iproute2 without JSON output: psutil reads the same kernel tables
    return _from_psutil()


def _addrs(key: str, interface: str | None, include_loopback: bool, cidr: str | None, kind: str | None) -> list:
    ifaces = _interfaces()
    if interface:
        if interface not in ifaces:
            raise CommandError(f"no interface {interface!r}; interfaces: {', '.join(ifaces)}")
        ifaces = {interface: ifaces[interface]}
    try:
        net = ipaddress.ip_network(cidr, strict=False) if cidr else None
    except ValueError as exc:
        raise CommandError(f"cidr: {exc}") from None
    if kind not in (None, "public", "private"):
        raise CommandError(f"type must be 'public' or 'private', got {kind!r}")
    found = set()
    for info in ifaces.values():
        for entry in info.get(key, []):
            ip = ipaddress.ip_address(entry["address"])
            if (ip.is_loopback and not include_loopback) or (net is not None and ip not in net) \
                    or (kind == "public" and not ip.is_global) or (kind == "private" and not ip.is_private):
                continue
            found.add(ip)
    return [str(ip) for ip in sorted(found)]


def ip_addrs(interface: str | None = None, include_loopback: bool = False, cidr: str | None = None,
             type: str | None = None) -> list:  # noqa: A002 (Salt's argument name)
    """Return the IPv4 addresses of this minion (sorted), loopback left out unless
    `include_loopback`; limited to one `interface`, to a `cidr`, or to `type` public/private.

    CLI example: rx '*' network.ip_addrs cidr=10.0.0.0/8
    """
    return _addrs("inet", interface, include_loopback, cidr, type)


def ip_addrs6(interface: str | None = None, include_loopback: bool = False, cidr: str | None = None) -> list:
    """Return the IPv6 addresses of this minion (sorted, link-local included), loopback left out
    unless `include_loopback`; limited to one `interface` or to a `cidr`.

    CLI example: rx '*' network.ip_addrs6 eth0
    """
    return _addrs("inet6", interface, include_loopback, cidr, None)


def hw_addr(iface: str) -> str:
    """Return the hardware (MAC) address of interface `iface`.

    CLI example: rx '*' network.hw_addr eth0
    """
    ifaces = _interfaces()
    if iface not in ifaces or "hwaddr" not in ifaces[iface]:
        raise CommandError(f"Interface {iface!r} not in available interfaces: {', '.join(ifaces)}")
    return ifaces[iface]["hwaddr"]


def subnets(interfaces: str | list | None = None) -> list:  # Salt's argument name
    """Return the IPv4 networks this minion is on, as CIDR ("192.0.2.0/24"), loopback left out;
    `interfaces` (a name or a list) limits it to those interfaces.

    CLI example: rx '*' network.subnets
    """
    wanted = [interfaces] if isinstance(interfaces, str) else interfaces
    found = set()
    for name, info in _interfaces().items():
        if wanted and name not in wanted:
            continue
        for entry in info.get("inet", []):
            net = ipaddress.ip_network(f"{entry['address']}/{entry['netmask']}", strict=False)
            if not net.is_loopback:
                found.add(net)
    return [str(n) for n in sorted(found)]


def _read_optional(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except FileNotFoundError:  # no IPv6 in this kernel, or no /proc/net
        return ""


def routes(family: str | None = None) -> list:
    """Return the routing table: [{addr_family, destination, gateway, netmask, flags, interface}]
    (IPv4: the main table with a netmask; IPv6: every table, destination as addr/prefix).

    `family` ("inet" or "inet6") limits it to one address family.
    CLI example: rx '*' network.routes inet
    """
    if family not in (None, "inet", "inet6"):
        raise CommandError(f"family must be 'inet' or 'inet6', got {family!r}")
    out = []
    if family in (None, "inet"):
        out += _procnet.parse_route(_read_optional("/proc/net/route"))
    if family in (None, "inet6"):
        out += _procnet.parse_ipv6_route(_read_optional("/proc/net/ipv6_route"))
    return out


def default_route(family: str | None = None) -> list:
    """Return the default routes (destination 0.0.0.0 or ::/0), in the shape of `routes`.

    CLI example: rx '*' network.default_route inet
    """
    return [r for r in routes(family) if r["destination"] in ("0.0.0.0", "::/0")]


def _sockets(name: str) -> list:
    return _procnet.parse_sockets(_read_optional(f"/proc/net/{name}"))


def active_tcp() -> dict:
    """Return the established TCP connections: {n: {local_addr, local_port, remote_addr, remote_port}}.

    CLI example: rx '*' network.active_tcp
    """
    ret = {}
    for conn in _sockets("tcp") + _sockets("tcp6"):
        if conn["state"] == _procnet.ESTABLISHED:
            ret[len(ret)] = {k: conn[k] for k in ("local_addr", "local_port", "remote_addr", "remote_port")}
    return ret


def netstat() -> list:
    """Return every TCP and UDP socket, as `netstat -tulpnea` shows them: [{proto, recv-q, send-q,
    local-address, remote-address, state (TCP only), user (uid), inode, program ("pid/name" or "-")}].

    CLI example: rx '*' network.netstat
    """
    owners = _procnet.socket_owners()
    ret = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for s in _sockets(proto):
            owner = owners.get(s["inode"])
            entry = {"proto": proto, "recv-q": str(s["rx_queue"]), "send-q": str(s["tx_queue"]),
                     "local-address": f"{s['local_addr']}:{s['local_port']}",
                     "remote-address": f"{s['remote_addr']}:{s['remote_port'] or '*'}"}
            if proto.startswith("tcp"):
                entry["state"] = _procnet.TCP_STATES.get(s["state"], str(s["state"]))
            entry.update({"user": str(s["uid"]), "inode": str(s["inode"]),
                          "program": f"{owner[0]}/{owner[1]}" if owner else "-"})
            ret.append(entry)
    return ret


def _host(host: Any) -> str:
    """A host name or address fit to be one argument of a command (never an option)."""
    if not isinstance(host, str) or not host or host.startswith(("-", "+")) \
            or any(c.isspace() or c == "\0" for c in host):
        raise CommandError(f"not a host name or address: {host!r}")
    return host


def _seconds(value: Any, name: str, limit: float = 300) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise CommandError(f"{name} must be a number of seconds, got {value!r}") from None
    if not 0 < seconds <= limit:
        raise CommandError(f"{name} must be more than 0 and at most {limit} seconds, got {value!r}")
    return seconds


def ping(host: str, timeout: float | bool = False, return_boolean: bool = False) -> Any:
    """Send 4 ICMP echo requests to `host`; return ping's output (the job fails if no reply came),
    or True/False with `return_boolean`. `timeout`: whole seconds to wait for a reply (default 10);
    ping never runs longer than 4 s plus that.

    CLI example: rx '*' network.ping example.org timeout=3
    """
    wait = math.ceil(_seconds(timeout, "timeout", 60)) if timeout else 10  # whole seconds: busybox's ping too
    _host(host)
    if not shutil.which("ping"):
        raise CommandError("network.ping needs the ping command (iputils-ping), which is not installed")
    argv = ["ping", "-c", "4", "-W", str(wait), "-w", str(wait + 4), host]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=wait + 10)
    except subprocess.TimeoutExpired:
        return False if return_boolean else Result(f"ping {host} did not finish within {wait + 10} s", 1)
    if return_boolean:
        return out.returncode == 0
    return Result((out.stdout + out.stderr).rstrip("\n"), 0 if out.returncode == 0 else 1)


def connect(host: str, port: int | None = None, proto: str = "tcp", timeout: float = 5,
            family: str | None = None) -> dict:
    """Try to reach `host` on `port` (TCP: a connection; UDP: a datagram and its answer);
    return {result: bool, comment}. `family`: "ipv4" or "ipv6" to force one.

    CLI example: rx '*' network.connect example.org 443 timeout=3
    """
    if not port:
        return {"result": False, "comment": "Required argument, port, is missing."}
    if proto not in ("tcp", "udp"):
        raise CommandError(f"proto must be 'tcp' or 'udp', got {proto!r}")
    if family not in (None, "ipv4", "ipv6"):
        raise CommandError(f"family must be 'ipv4' or 'ipv6', got {family!r}")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise CommandError(f"port must be a number, got {port!r}") from None
    if not 0 < port < 65536:
        raise CommandError(f"port must be 1-65535, got {port}")
    seconds = _seconds(timeout, "timeout")
    fam = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}.get(family or "", 0)
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    try:
        af, socktype, sproto, _, address = socket.getaddrinfo(_host(host), port, fam, kind)[0]
    except (socket.gaierror, UnicodeError):
        return {"result": False, "comment": f"Unable to resolve host {host} on {proto} port {port}"}
    where = f"{host} ({address[0]}) on {proto} port {port}"
    try:
        with socket.socket(af, socktype, sproto) as sock:
            sock.settimeout(seconds)
            sock.connect(address)
            if proto == "udp":
                sock.send(os.urandom(16).hex().encode())
                sock.recv(512)
    except OSError:
        return {"result": False, "comment": f"Unable to connect to {where}"}
    return {"result": True, "comment": f"Successfully connected to {where}"}


def get_hostname() -> str:
    """Return the host name of this minion (as `hostname` prints it).

    CLI example: rx '*' network.get_hostname
    """
    return socket.gethostname()


def dig(host: str) -> Any:
    """Return the output of `dig host` (needs the dig command, bind9-dnsutils or bind-utils).

    CLI example: rx '*' network.dig example.org
    """
    _host(host)
    if not shutil.which("dig"):
        raise CommandError("network.dig needs the dig command (bind9-dnsutils or bind-utils), which is not installed")
    try:
        out = subprocess.run(["dig", host], capture_output=True, text=True, errors="replace", timeout=30)
    except subprocess.TimeoutExpired:
        raise CommandError(f"dig {host} did not finish within 30 s") from None
    return Result((out.stdout + out.stderr).rstrip("\n"), out.returncode)
