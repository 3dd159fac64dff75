"""network.*: the /proc/net and `ip -j` translations on captured output, and each function on this
machine against the kernel's own view (sockets we open, /sys/class/net, `ip route`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rx.modules import CommandError, Result, _procnet, network

DATA = Path(__file__).parent / "data" / "sysinfo"
HAS_IPV6 = Path("/proc/net/if_inet6").exists()


def data(name: str) -> str:
    return (DATA / name).read_text()


# --- translations, on captured output -------------------------------------------------------

def test_from_ip_json():
    """Captured with a veth rxt0 carrying a labelled alias, a second address without broadcast, and IPv6."""
    ifaces = network._from_ip_json(json.loads(data("ip_addr.json")))
    assert sorted(ifaces) == ["eth0", "ifb0", "ifb1", "lo", "rxt0", "rxt1"]
    assert ifaces["lo"] == {"up": True, "hwaddr": "00:00:00:00:00:00",
                            "inet": [{"address": "127.0.0.1", "netmask": "255.0.0.0", "broadcast": None,
                                      "label": "lo"}],
                            "inet6": [{"address": "::1", "prefixlen": "128", "scope": "host"}]}
    assert ifaces["ifb0"] == {"up": False, "hwaddr": "f6:ad:71:3e:a0:a1"}
    assert ifaces["rxt0"]["inet"] == [
        {"address": "10.99.0.1", "netmask": "255.255.255.0", "broadcast": "10.99.0.255", "label": "rxt0:1"},
        {"address": "10.99.1.1", "netmask": "255.255.0.0", "broadcast": None, "label": "rxt0"}]
    assert ifaces["rxt0"]["inet6"] == [{"address": "fd99::1", "prefixlen": "64", "scope": "global"},
                                       {"address": "fe80::6cb3:9ff:fe21:1e12", "prefixlen": "64", "scope": "link"}]


def test_parse_route():
    assert _procnet.parse_route(data("proc_net_route")) == [
        {"addr_family": "inet", "destination": "0.0.0.0", "gateway": "192.0.2.1", "netmask": "0.0.0.0",
         "flags": "UG", "interface": "eth0"},
        {"addr_family": "inet", "destination": "10.99.0.0", "gateway": "0.0.0.0", "netmask": "255.255.255.0",
         "flags": "U", "interface": "rxt0"},
        {"addr_family": "inet", "destination": "10.99.0.0", "gateway": "0.0.0.0", "netmask": "255.255.0.0",
         "flags": "U", "interface": "rxt0"},
        {"addr_family": "inet", "destination": "192.0.2.0", "gateway": "0.0.0.0", "netmask": "255.255.255.0",
         "flags": "U", "interface": "eth0"}]


def test_parse_ipv6_route():
    routes = _procnet.parse_ipv6_route(data("proc_net_ipv6_route"))
    assert len(routes) == 14
    assert routes[5] == {"addr_family": "inet6", "destination": "::/0", "gateway": "fd00::1", "netmask": "",
                         "flags": "UG", "interface": "eth0"}
    assert routes[6]["destination"] == "::1/128" and routes[6]["flags"] == "Un"
    assert routes[1]["destination"] == "fd99::/64" and routes[1]["interface"] == "rxt0"
    assert routes[-1] == {"addr_family": "inet6", "destination": "::/0", "gateway": "::", "netmask": "",
                          "flags": "!n", "interface": "lo"}


def _ss_endpoint(text: str) -> tuple[str, str]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), port


def test_parse_sockets_agrees_with_ss():
    """/proc/net/{tcp,tcp6,udp,udp6} and `ss -tuna` captured at the same moment (test sockets only)."""
    states = {"LISTEN": "LISTEN", "ESTAB": "ESTABLISHED", "UNCONN": "CLOSE"}
    expected = set()
    for line in data("ss_tuna.txt").splitlines()[1:]:
        netid, state, _, _, local, peer = line.split()[:6]
        (lhost, lport), (rhost, rport) = _ss_endpoint(local), _ss_endpoint(peer)
        family = "6" if ":" in lhost else ""
        expected.add((netid + family, states[state], lhost, int(lport), rhost, 0 if rport == "*" else int(rport)))
    parsed = set()
    for name in ("tcp", "tcp6", "udp", "udp6"):
        for s in _procnet.parse_sockets(data(f"proc_net_{name}")):
            parsed.add((name, _procnet.TCP_STATES[s["state"]], s["local_addr"], s["local_port"],
                        s["remote_addr"], s["remote_port"]))
    assert parsed == expected and len(parsed) == 8


# --- on this machine ------------------------------------------------------------------------

def test_interfaces_has_loopback_and_every_interface():
    ifaces = network.interfaces()
    assert set(ifaces) == {name for _, name in socket.if_nameindex()}
    assert ifaces["lo"]["up"] is True
    assert {"address": "127.0.0.1", "netmask": "255.0.0.0", "broadcast": None, "label": "lo"} in ifaces["lo"]["inet"]


@pytest.mark.skipif(not shutil.which("ip"), reason="no iproute2 here: interfaces() is psutil's already")
def test_psutil_fallback_agrees_with_ip():
    def normal(ifaces):
        return {n: {**i, **{k: sorted(i[k], key=lambda a: a["address"]) for k in ("inet", "inet6") if k in i}}
                for n, i in ifaces.items()}
    assert normal(network._from_psutil()) == normal(network.interfaces())


def test_hw_addr_is_sysfs():
    assert network.hw_addr("lo") == "00:00:00:00:00:00"
    for name, info in network.interfaces().items():
        if "hwaddr" in info:
            assert network.hw_addr(name) == Path(f"/sys/class/net/{name}/address").read_text().strip()
    with pytest.raises(CommandError, match="not in available interfaces"):
        network.hw_addr("no-such-if0")


def test_ip_addrs():
    assert "127.0.0.1" in network.ip_addrs(include_loopback=True)
    assert "127.0.0.1" not in network.ip_addrs()
    assert network.ip_addrs("lo", include_loopback=True, cidr="127.0.0.0/8") == ["127.0.0.1"]
    assert network.ip_addrs(cidr="198.51.100.0/24") == []
    assert "127.0.0.1" not in network.ip_addrs(include_loopback=True, type="public")
    if shutil.which("hostname"):  # hostname -I: every address but loopback and IPv6 link-local
        shown = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
        assert set(network.ip_addrs()) == {a for a in shown if ":" not in a}
    for kwargs, message in (({"interface": "no-such-if0"}, "no interface"), ({"cidr": "10.0.0.0/99"}, "cidr"),
                            ({"type": "shiny"}, "public")):
        with pytest.raises(CommandError, match=message):
            network.ip_addrs(**kwargs)


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 in this kernel")
def test_ip_addrs6():
    assert "::1" in network.ip_addrs6(include_loopback=True)
    assert "::1" not in network.ip_addrs6()
    in_proc = set()
    for line in Path("/proc/net/if_inet6").read_text().splitlines():
        in_proc.add(str(__import__("ipaddress").IPv6Address(bytes.fromhex(line.split()[0]))))
    assert set(network.ip_addrs6(include_loopback=True)) == in_proc


def test_subnets():
    nets = network.subnets()
    addrs = network.ip_addrs()
    import ipaddress
    for net in nets:
        assert any(ipaddress.ip_address(a) in ipaddress.ip_network(net) for a in addrs)
    assert network.subnets("lo") == []


def test_routes_and_default_route_match_ip_route():
    if not shutil.which("ip"):
        pytest.skip("no iproute2 to compare with")
    main = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", "main"], capture_output=True,
                                     text=True, timeout=10).stdout)
    ours = network.routes("inet")
    assert len(ours) == len(main)
    defaults = [r for r in main if r["dst"] == "default"]
    assert [(r["gateway"], r["interface"]) for r in network.default_route("inet")] == \
        [(r["gateway"], r["dev"]) for r in defaults]
    assert all(r["addr_family"] == "inet6" for r in network.routes("inet6"))
    with pytest.raises(CommandError, match="family"):
        network.routes("ipx")


@pytest.fixture
def server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    yield srv
    srv.close()


def test_active_tcp_and_netstat_see_our_sockets(server):
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        cport = client.getsockname()[1]
        active = network.active_tcp()
        assert all(set(c) == {"local_addr", "local_port", "remote_addr", "remote_port"} for c in active.values())
        conns = [(c["local_addr"], c["local_port"], c["remote_addr"], c["remote_port"]) for c in active.values()]
        assert ("127.0.0.1", cport, "127.0.0.1", port) in conns and ("127.0.0.1", port, "127.0.0.1", cport) in conns
        table = {(e["proto"], e["local-address"], e["remote-address"]): e for e in network.netstat()}
        comm = Path("/proc/self/comm").read_text().strip()
        listening = table[("tcp", f"127.0.0.1:{port}", "0.0.0.0:*")]
        assert listening["state"] == "LISTEN" and listening["program"] == f"{os.getpid()}/{comm}"
        assert listening["inode"] == str(os.fstat(server.fileno()).st_ino)
        assert listening["user"] == str(os.getuid())
        assert table[("tcp", f"127.0.0.1:{cport}", f"127.0.0.1:{port}")]["state"] == "ESTABLISHED"
        bound = table[("udp", f"127.0.0.1:{udp.getsockname()[1]}", "0.0.0.0:*")]
        assert "state" not in bound and bound["program"] == f"{os.getpid()}/{comm}"
    finally:
        for s in (client, accepted, udp):
            s.close()


def test_connect_tcp(server):
    port = server.getsockname()[1]
    assert network.connect("127.0.0.1", port) == {
        "result": True, "comment": f"Successfully connected to 127.0.0.1 (127.0.0.1) on tcp port {port}"}
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free = closed.getsockname()[1]
    closed.close()
    refused = network.connect("127.0.0.1", free, timeout=3)
    assert refused["result"] is False and refused["comment"].startswith("Unable to connect to 127.0.0.1")
    assert network.connect("nonexistent.invalid", 80)["comment"] == \
        "Unable to resolve host nonexistent.invalid on tcp port 80"
    assert network.connect("127.0.0.1")["result"] is False


def test_connect_udp_gets_an_answer():
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    echo.settimeout(10)

    def answer():
        data, peer = echo.recvfrom(512)
        echo.sendto(data, peer)
    t = threading.Thread(target=answer)
    t.start()
    try:
        got = network.connect("127.0.0.1", echo.getsockname()[1], proto="udp", timeout=5)
    finally:
        t.join()
        echo.close()
    assert got["result"] is True and "on udp port" in got["comment"]


def test_connect_refuses_bad_arguments():
    for kwargs, message in (({"port": "http"}, "port must be a number"), ({"port": 70000}, "1-65535"),
                            ({"port": 80, "proto": "sctp"}, "proto"), ({"port": 80, "family": "ipx"}, "family"),
                            ({"port": 80, "timeout": -1}, "timeout")):
        with pytest.raises(CommandError, match=message):
            network.connect("127.0.0.1", **kwargs)


def test_get_hostname():
    assert network.get_hostname() == os.uname().nodename


def test_ping():
    with pytest.raises(CommandError, match="not a host"):
        network.ping("-f")
    with pytest.raises(CommandError, match="timeout"):
        network.ping("127.0.0.1", timeout=600)
    if not shutil.which("ping"):
        with pytest.raises(CommandError, match="iputils-ping"):
            network.ping("127.0.0.1")
        return
    assert network.ping("127.0.0.1", timeout=0.5, return_boolean=True) is True  # whole seconds to ping
    out = network.ping("127.0.0.1", timeout=2)
    assert isinstance(out, Result) and out.retcode == 0 and "127.0.0.1" in out.value


def test_dig():
    with pytest.raises(CommandError, match="not a host"):
        network.dig("+short")
    if not shutil.which("dig"):
        with pytest.raises(CommandError, match="needs the dig command"):
            network.dig("localhost")
        return
    assert "QUESTION SECTION" in network.dig("localhost").value


def test_without_ip_ping_and_dig_on_the_path(tmp_path):
    """PATH holding none of the tools: interfaces come from psutil, ping and dig say what is missing."""
    code = ("import json; from rx.modules import network, CommandError\n"
            "for fun in (network.ping, network.dig):\n"
            "    try:\n        fun('127.0.0.1')\n    except CommandError as exc:\n        print(exc)\n"
            "print(json.dumps(network.interfaces()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    ping, dig, ifaces = out.stdout.splitlines()
    assert "needs the ping command (iputils-ping)" in ping and "needs the dig command" in dig
    assert json.loads(ifaces) == json.loads(json.dumps(network._from_psutil()))
