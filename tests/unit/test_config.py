"""rx.config: typed, frozen config from YAML, with errors that name file, key and value."""

from __future__ import annotations

import dataclasses
import logging
import os

import pytest
import yaml

from rx import config
from rx.config import (AF_UNIX_PATH_MAX, ConfigError, MasterConfig, MinionConfig, config_dir_from, load_master_config,
                       load_minion_config, validate_minion_id)


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
    ("master", "worker_threads", 0), ("master", "worker_threads", 257), ("master", "worker_threads", 1.5),
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
    ("master", "publish_port", 65535), ("master", "worker_threads", 256), ("master", "keep_jobs_hours", 0),
    ("master", "log_level", "Error"), ("minion", "master_finger", "AB:" * 31 + "AB"), ("minion", "master_finger", ""),
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

_LONGEST_IPC = max(("master_event_pull.ipc", "master_event_pub.ipc", "publish_pull.ipc", "master_req.ipc",
                    "workers.ipc"), key=len)


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
    for ipc in (cfg.ret_ipc, cfg.workers_ipc, cfg.publish_pull_ipc, cfg.event_pull_ipc, cfg.event_pub_ipc):
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


def test_minion_id_defaults_to_the_host_name(tmp_path, monkeypatch):
    monkeypatch.setattr(config.socket, "getfqdn", lambda: "host.example.com")
    assert load_minion_config(str(tmp_path)).id == "host.example.com"


def test_unusable_host_name_as_default_id_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(config.socket, "getfqdn", lambda: ".bad/host")
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
