"""rx.config: typed, frozen config from YAML, with errors that name file, key and value."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from rx import config
from rx.config import (AF_UNIX_PATH_MAX, MASTER_SOCKETS, ConfigError, MasterConfig, MinionConfig, config_dir_from,
                       default_workers, load_master_config, load_minion_config, narrow, validate_minion_id)
from rx.configdocs import config_yaml, reference_markdown
from rx.configspec import keys


def _write(tmp_path, role: str, settings) -> str:
    text = settings if isinstance(settings, str) else yaml.safe_dump(settings)
    (tmp_path / role).write_text(text)
    return str(tmp_path / role)


def _load(role: str, cdir, overrides=None):
    return (load_master_config if role == "master" else load_minion_config)(str(cdir), overrides)


@pytest.fixture(autouse=True)
def _no_env_config_dir(monkeypatch):
    monkeypatch.delenv("RX_CONFIG_DIR", raising=False)


# ---------------------------------------------------------------- minion ids

@pytest.mark.parametrize("minion_id", [
    "a", "web-01.example.com", "x" * 255, "ünïcödé", "with space", "a.b..c", "UPPER_lower-09", "a.",
], ids=lambda v: repr(v)[:30])
def test_valid_minion_ids(minion_id):
    assert validate_minion_id(minion_id) is None


@pytest.mark.parametrize("minion_id", [
    "", "x" * 256, "a/b", "/abs", "a\\b", "a\x00b", ".hidden", ".", "..", "../x", "a\nb", "a\tb", "\x7f",
    "a\u200bb", 5, None, b"web1", ["web1"],
], ids=lambda v: repr(v)[:30])
def test_invalid_minion_ids(minion_id):
    why = validate_minion_id(minion_id)
    assert isinstance(why, str) and why


# ---------------------------------------------------------------- config dir and defaults

def test_config_dir_precedence(monkeypatch, tmp_path):
    assert config_dir_from(None) == "/etc/rx"
    (env_dir := tmp_path / "from-env").mkdir()
    (cli_dir := tmp_path / "from-cli").mkdir()
    monkeypatch.setenv("RX_CONFIG_DIR", str(env_dir))
    assert config_dir_from(None) == str(env_dir)
    assert config_dir_from(str(cli_dir)) == str(cli_dir)


def test_env_config_dir_is_used_by_the_loader(tmp_path, monkeypatch):
    _write(tmp_path, "master", {"ret_port": 4999})
    monkeypatch.setenv("RX_CONFIG_DIR", str(tmp_path))
    cfg = load_master_config()
    assert cfg.ret_port == 4999 and cfg.config_dir == str(tmp_path)


def test_master_defaults_without_a_file(tmp_path):
    cfg = load_master_config(str(tmp_path))
    assert isinstance(cfg, MasterConfig)
    assert cfg.config_dir == str(tmp_path)
    assert (cfg.publish_port, cfg.ret_port, cfg.auto_accept, cfg.log_level) == (4505, 4506, False, "warning")
    assert cfg.pki_dir == "/etc/rx/pki/master"
    assert cfg.jobs_dir == "/var/cache/rx/master/jobs"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file_means_defaults(tmp_path, text):
    _write(tmp_path, "master", text)
    (tmp_path / "no-file-here").mkdir()
    without_file = load_master_config(str(tmp_path / "no-file-here"))
    assert load_master_config(str(tmp_path)) == dataclasses.replace(without_file, config_dir=str(tmp_path))


@pytest.mark.parametrize("role, key, sub", [
    ("master", "pki_dir", "etc/rx/pki/master"), ("master", "cachedir", "var/cache/rx/master"),
    ("master", "sock_dir", "var/run/rx/master"), ("master", "log_file", "var/log/rx/master"),
    ("master", "pidfile", "var/run/rx-master.pid"),
    ("minion", "pki_dir", "etc/rx/pki/minion"), ("minion", "cachedir", "var/cache/rx/minion"),
    ("minion", "log_file", "var/log/rx/minion"), ("minion", "pidfile", "var/run/rx-minion.pid"),
])
def test_every_default_path_derives_from_root_dir(tmp_path, role, key, sub):
    root = tmp_path / "root"
    _write(tmp_path, role, {"root_dir": str(root), "id": "m1"} if role == "minion" else {"root_dir": str(root)})
    cfg = _load(role, tmp_path)
    assert getattr(cfg, key) == os.path.join(str(root), sub)


def test_derived_master_paths_follow_root_dir(tmp_path):
    _write(tmp_path, "master", {"root_dir": str(tmp_path)})
    cfg = load_master_config(str(tmp_path))
    for path in (cfg.root_key_path, cfg.jobs_dir, cfg.ret_ipc, cfg.workers_ipc, cfg.publish_pull_ipc,
                 cfg.event_pull_ipc, cfg.event_pub_ipc):
        assert path.startswith(str(tmp_path) + os.sep)


def test_relative_paths_are_under_root_dir(tmp_path):
    _write(tmp_path, "master", {"root_dir": str(tmp_path), "pki_dir": "keys/master"})
    assert load_master_config(str(tmp_path)).pki_dir == str(tmp_path / "keys" / "master")


def test_values_are_read_and_config_is_frozen(tmp_path):
    _write(tmp_path, "master", {"ret_port": 5506, "auto_accept": True, "timeout": 2, "log_level": "DEBUG",
                                "nodegroups": {"web": "web*"}})
    cfg = load_master_config(str(tmp_path))
    assert (cfg.ret_port, cfg.auto_accept, cfg.timeout, cfg.log_level) == (5506, True, 2, "debug")
    assert cfg.nodegroups == {"web": "web*"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ret_port = 1  # type: ignore[misc]


def test_overrides_win_over_the_file_and_are_validated(tmp_path):
    _write(tmp_path, "master", {"ret_port": 5506})
    assert load_master_config(str(tmp_path), {"ret_port": 6506}).ret_port == 6506
    with pytest.raises(ConfigError) as info:
        load_master_config(str(tmp_path), {"ret_port": "x"})
    assert info.value.key == "ret_port"


# ---------------------------------------------------------------- wrong types and values

BAD_VALUES = [
    ("master", "publish_port", "abc"), ("master", "publish_port", 0), ("master", "publish_port", 65536),
    ("master", "publish_port", True), ("master", "publish_port", 4505.0), ("master", "ret_port", -1),
    ("master", "worker_processes", 0), ("master", "worker_processes", 257), ("master", "worker_processes", 1.5),
    ("master", "worker_threads", 0), ("minion", "publish_port", -1), ("minion", "publish_port", 65536),
    ("master", "zmq_backlog", 0), ("master", "zmq_backlog", 70000), ("master", "zmq_backlog", "lots"),
    ("master", "auto_accept", "yes please"), ("master", "auto_accept", 1),
    ("master", "timeout", 0), ("master", "timeout", -1), ("master", "timeout", "5"), ("master", "timeout", True),
    ("master", "keep_jobs_hours", -1), ("master", "publish_key_rotate_hours", -0.5),
    ("master", "auth_window_seconds", 0), ("master", "log_level", "verbose"), ("master", "log_level", 10),
    ("master", "nodegroups", ["web*"]), ("master", "interface", 127), ("master", "root_dir", ["/"]),
    ("master", "sock_dir", None), ("master", "user", 0),
    ("minion", "id", "a/b"), ("minion", "id", ".hidden"), ("minion", "id", ""), ("minion", "id", "x" * 256),
    ("minion", "id", "a\\b"), ("minion", "id", 42),
    ("minion", "master", "   "), ("minion", "master", None), ("minion", "master_port", 70000),
    ("minion", "master_finger", "xyz"), ("minion", "master_finger", "ab" * 31),
    ("minion", "grains", "role: web"), ("minion", "auth_retry_max_seconds", 0),
    ("minion", "pending_warn_seconds", -1), ("minion", "timeout", "soon"),
]


@pytest.mark.parametrize("role, key, value", BAD_VALUES, ids=[f"{r}-{k}-{v!r}"[:60] for r, k, v in BAD_VALUES])
def test_wrong_type_or_value_names_file_key_and_value(tmp_path, role, key, value):
    settings = {key: value}
    if role == "minion" and key != "id":
        settings["id"] = "m1"
    path = _write(tmp_path, role, settings)
    with pytest.raises(ConfigError) as info:
        _load(role, tmp_path)
    msg = str(info.value)
    assert path in msg and key in msg and repr(value) in msg and "expected" in msg
    assert info.value.key == key and info.value.path == path


@pytest.mark.parametrize("role, key, value", [
    ("master", "timeout", 0.5), ("master", "timeout", 3), ("master", "publish_port", 1),
    ("master", "publish_port", 65535), ("master", "worker_processes", 256), ("master", "keep_jobs_hours", 0),
    ("master", "log_level", "Error"), ("minion", "master_finger", "AB:" * 31 + "AB"), ("minion", "master_finger", ""),
    ("minion", "publish_port", 0), ("minion", "publish_port", 65535), ("master", "zmq_backlog", 1),
    ("master", "zmq_backlog", 65535),
])
def test_edge_values_are_allowed(tmp_path, role, key, value):
    settings = {key: value, "id": "m1"} if role == "minion" else {key: value}
    _write(tmp_path, role, settings)
    _load(role, tmp_path)


def test_master_finger_is_normalised(tmp_path):
    _write(tmp_path, "minion", {"id": "m1", "master_finger": "AB:" * 31 + "CD"})
    assert load_minion_config(str(tmp_path)).master_finger == "ab" * 31 + "cd"


@pytest.mark.parametrize("text, what", [
    ("ret_port: [1, 2\n", "not valid YAML"),
    ("key: value\n  bad: indent\n", "not valid YAML"),
    ("- a\n- b\n", "must be a YAML mapping"),
    ("just a string\n", "must be a YAML mapping"),
])
def test_unusable_files(tmp_path, text, what):
    path = _write(tmp_path, "master", text)
    with pytest.raises(ConfigError) as info:
        load_master_config(str(tmp_path))
    assert path in str(info.value) and what in str(info.value)


def test_invalid_yaml_names_the_line(tmp_path):
    _write(tmp_path, "master", "ret_port: 4506\ntimeout: 5\nbad: [\n")
    with pytest.raises(ConfigError, match="line"):
        load_master_config(str(tmp_path))


def test_unreadable_file(tmp_path):
    (tmp_path / "master").mkdir()  # a directory cannot be read as a file (works as root, unlike chmod 000)
    with pytest.raises(ConfigError) as info:
        load_master_config(str(tmp_path))
    assert "cannot read" in str(info.value) and str(tmp_path / "master") in str(info.value)


# ---------------------------------------------------------------- unknown keys

@pytest.mark.parametrize("role, typo, suggestion", [
    ("master", "publish_prot", "publish_port"), ("master", "auto_acept", "auto_accept"),
    ("master", "sockdir", "sock_dir"), ("minion", "master_fingerprint", "master_finger"),
    ("minion", "grain", "grains"),
])
def test_unknown_key_warns_with_did_you_mean(tmp_path, caplog, role, typo, suggestion):
    settings = {typo: 1, "id": "m1"} if role == "minion" else {typo: 1}
    path = _write(tmp_path, role, settings)
    with caplog.at_level(logging.WARNING, logger="rx.config"):
        cfg = _load(role, tmp_path)
    assert not hasattr(cfg, typo)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert typo in warnings[0] and path in warnings[0]
    assert f"did you mean {suggestion!r}" in warnings[0]


def test_unknown_key_without_a_close_match_warns_without_a_suggestion(tmp_path, caplog):
    _write(tmp_path, "master", {"zzzzqqqq": 1})
    with caplog.at_level(logging.WARNING, logger="rx.config"):
        load_master_config(str(tmp_path))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "zzzzqqqq" in warnings[0] and "did you mean" not in warnings[0]


def test_known_keys_do_not_warn(tmp_path, caplog):
    _write(tmp_path, "master", {"ret_port": 4506, "timeout": 5})
    with caplog.at_level(logging.WARNING, logger="rx.config"):
        load_master_config(str(tmp_path))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------- sock_dir length (AF_UNIX)

_LONGEST_IPC = max(MASTER_SOCKETS.values(), key=len)


def _sock_dir_of_len(tmp_path, total: int, char: str = "s") -> str:
    """A sock_dir whose longest IPC socket path is `total` bytes long."""
    base = str(tmp_path) + "/"
    room = total - len(os.fsencode(base)) - 1 - len(_LONGEST_IPC)
    assert room > 0
    return base + char * (room // len(char.encode()))


def test_sock_dir_at_the_limit_is_accepted(tmp_path):
    sock_dir = _sock_dir_of_len(tmp_path, AF_UNIX_PATH_MAX)
    _write(tmp_path, "master", {"sock_dir": sock_dir})
    cfg = load_master_config(str(tmp_path))
    assert len(cfg.socket_paths()) == len(MASTER_SOCKETS)
    for ipc in cfg.socket_paths():
        assert len(os.fsencode(ipc)) <= AF_UNIX_PATH_MAX


def test_sock_dir_too_long_names_sock_dir(tmp_path):
    sock_dir = _sock_dir_of_len(tmp_path, AF_UNIX_PATH_MAX + 1)
    path = _write(tmp_path, "master", {"sock_dir": sock_dir})
    with pytest.raises(ConfigError) as info:
        load_master_config(str(tmp_path))
    assert info.value.key == "sock_dir" and info.value.path == path
    assert "sock_dir" in str(info.value) and sock_dir in str(info.value) and str(AF_UNIX_PATH_MAX) in str(info.value)


def test_sock_dir_limit_counts_bytes_not_characters(tmp_path):
    # 'é' is two bytes in UTF-8: under the limit in characters, over it in bytes
    sock_dir = _sock_dir_of_len(tmp_path, AF_UNIX_PATH_MAX + 2, char="é")
    assert len(os.path.join(sock_dir, _LONGEST_IPC)) <= AF_UNIX_PATH_MAX
    _write(tmp_path, "master", {"sock_dir": sock_dir})
    with pytest.raises(ConfigError) as info:
        load_master_config(str(tmp_path))
    assert info.value.key == "sock_dir"


def test_root_dir_that_makes_sock_dir_too_long_names_sock_dir(tmp_path):
    root = str(tmp_path / ("r" * 100))
    _write(tmp_path, "master", {"root_dir": root})
    with pytest.raises(ConfigError) as info:
        load_master_config(str(tmp_path))
    assert info.value.key == "sock_dir"


# ---------------------------------------------------------------- minion id default

def test_minion_id_from_the_file(tmp_path):
    _write(tmp_path, "minion", {"id": "web-01"})
    cfg = load_minion_config(str(tmp_path))
    assert isinstance(cfg, MinionConfig) and cfg.id == "web-01"


def test_minion_id_defaults_to_what_hostname_f_says_and_never_localhost(tmp_path):
    said = subprocess.run(["hostname", "-f"], capture_output=True, text=True).stdout.strip()
    expected = socket.gethostname() if said.split(".")[0].startswith(("localhost", "ip6-localhost")) else said
    assert load_minion_config(str(tmp_path)).id == expected != "localhost"


def test_unusable_host_name_as_default_id_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(config.socket, "gethostname", lambda: ".bad/host")
    with pytest.raises(ConfigError) as info:
        load_minion_config(str(tmp_path))
    assert info.value.key == "id" and ".bad/host" in str(info.value)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_explicit_config_dir_that_does_not_exist_is_an_error(tmp_path, monkeypatch, how):
    from rx.config import ConfigError, load_master_config, load_minion_config
    missing = str(tmp_path / "nope")
    monkeypatch.delenv("RX_CONFIG_DIR", raising=False)
    if how == "env":
        monkeypatch.setenv("RX_CONFIG_DIR", missing)
    for load in (load_master_config, load_minion_config):
        with pytest.raises(ConfigError, match="does not exist"):
            load(missing if how == "flag" else None)


# ---------------------------------------------------------------- declarations, deprecated names, defaults

@pytest.mark.parametrize("cls", [MasterConfig, MinionConfig])
def test_every_setting_is_declared_with_a_rule_and_a_doc(cls):
    declared = keys(cls)
    assert set(declared) == {f.name for f in dataclasses.fields(cls)} - {"config_dir"}
    for key in declared.values():
        assert key.spec.doc and key.spec.rule.allowed and "\n" not in key.spec.doc
        assert key.types and key.type_name


def test_docs_config_md_is_up_to_date():
    docs = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert docs.read_text() == reference_markdown(), "docs/config.md is out of date: run `make docs`"


def test_reference_names_every_key_and_the_salt_name():
    text = reference_markdown()
    for cls in (MasterConfig, MinionConfig):
        for name in keys(cls):
            assert f"| `{name}` |" in text
    assert "`worker_threads`" in text


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_worker_threads_is_read_as_worker_processes_with_a_warning(tmp_path, caplog):
    _write(tmp_path, "master", {"worker_threads": 3})
    with caplog.at_level(logging.WARNING, logger="rx.config"):
        cfg = load_master_config(str(tmp_path))
    assert cfg.worker_processes == 3 and not hasattr(cfg, "worker_threads")
    (warning,) = _warnings(caplog)
    assert "worker_threads is deprecated; use worker_processes" in warning


def test_worker_processes_wins_over_worker_threads_and_the_warning_says_so(tmp_path, caplog):
    _write(tmp_path, "master", {"worker_threads": 3, "worker_processes": 5})
    with caplog.at_level(logging.WARNING, logger="rx.config"):
        assert load_master_config(str(tmp_path)).worker_processes == 5
    (warning,) = _warnings(caplog)
    assert "worker_threads is deprecated; use worker_processes" in warning and "worker_processes wins" in warning


def test_worker_processes_defaults_to_default_workers(tmp_path):
    assert load_master_config(str(tmp_path)).worker_processes == default_workers()


def test_minion_publish_port_defaults_to_0_the_announced_port(tmp_path):
    _write(tmp_path, "minion", {"id": "m1"})
    assert load_minion_config(str(tmp_path)).publish_port == 0


def test_each_socket_property_is_its_entry_in_master_sockets(tmp_path):
    cfg = load_master_config(str(tmp_path))
    for prop, name in MASTER_SOCKETS.items():
        assert getattr(cfg, prop) == os.path.join(cfg.sock_dir, name)
    assert sorted(cfg.socket_paths()) == sorted(getattr(cfg, prop) for prop in MASTER_SOCKETS)


# ---------------------------------------------------------------- --print-config

@pytest.mark.parametrize("role", ["master", "minion"])
def test_printed_config_has_every_key_and_loads_back_the_same(tmp_path, role):
    _write(tmp_path, role, {"root_dir": str(tmp_path / "r"), "id": "m1"} if role == "minion" else
           {"root_dir": str(tmp_path / "r"), "nodegroups": {"web": "web*"}})
    cfg = _load(role, tmp_path)
    printed = yaml.safe_load(config_yaml(cfg))
    assert list(printed) == [f.name for f in dataclasses.fields(cfg)]
    assert printed["pki_dir"] == os.path.join(str(tmp_path / "r"), f"etc/rx/pki/{role}")
    (again := tmp_path / "again").mkdir()
    del printed["config_dir"]
    _write(again, role, printed)
    assert _load(role, again) == dataclasses.replace(cfg, config_dir=str(again))


def _main(role: str, argv: list[str]) -> int:
    if role == "master":
        from rx.master.daemon import main
    else:
        from rx.minion.daemon import main
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


@pytest.mark.parametrize("role", ["master", "minion"])
def test_print_config_applies_the_command_line_and_starts_nothing(tmp_path, capsys, role):
    root = tmp_path / "r"
    _write(tmp_path, role, {"root_dir": str(root), "id": "from-file", "log_level": "error"} if role == "minion"
           else {"root_dir": str(root), "log_level": "error"})
    argv = ["-c", str(tmp_path), "-l", "debug", "--pid-file", str(tmp_path / "x.pid"), "--print-config"]
    assert _main(role, argv + (["--id", "from-flag"] if role == "minion" else [])) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["log_level"] == "debug" and printed["pidfile"] == str(tmp_path / "x.pid")
    assert printed["config_dir"] == str(tmp_path) and printed["cachedir"] == os.path.join(str(root), f"var/cache/rx/{role}")
    assert printed.get("id", "from-flag") == "from-flag"
    assert not root.exists()


@pytest.mark.parametrize("role", ["master", "minion"])
def test_print_config_with_a_bad_setting_exits_2(tmp_path, capsys, role):
    _write(tmp_path, role, {"timeout": "soon", "id": "m1"} if role == "minion" else {"timeout": "soon"})
    assert _main(role, ["-c", str(tmp_path), "--print-config"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "timeout" in out.err


# ---------------------------------------------------------------- narrow

@dataclasses.dataclass(frozen=True)
class _PublisherView:
    interface: str
    publish_port: int
    publish_pull_ipc: str


def test_narrow_takes_fields_and_properties(tmp_path):
    cfg = load_master_config(str(tmp_path))
    view = narrow(cfg, _PublisherView)
    assert view == _PublisherView(cfg.interface, cfg.publish_port, cfg.publish_pull_ipc)
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.publish_port = 1  # type: ignore[misc]


def test_narrow_names_every_missing_field(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Wants:
        ret_port: int
        no_such: str
        nor_this: int = 0

    with pytest.raises(TypeError) as info:
        narrow(load_master_config(str(tmp_path)), Wants)
    assert "no_such" in str(info.value) and "nor_this" in str(info.value) and "ret_port" not in str(info.value)


def test_narrow_wants_a_frozen_dataclass(tmp_path):
    @dataclasses.dataclass
    class Mutable:
        ret_port: int

    cfg = load_master_config(str(tmp_path))
    for cls in (Mutable, dict):
        with pytest.raises(TypeError, match="frozen dataclass"):
            narrow(cfg, cls)
