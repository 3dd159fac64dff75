"""rx-api's settings (rx.apiconfig): defaults, checks, Salt's names and salt-api blocks, the TLS start rule, and
rx-api's start-up refusals (a real `rx-api` process, no daemons needed: it stops before it listens)."""

from __future__ import annotations

import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from rx.apiconfig import tls_problem
from rx.config import ConfigError, load_master_config


@pytest.fixture(autouse=True)
def _no_env_config_dir(monkeypatch):
    monkeypatch.delenv("RX_CONFIG_DIR", raising=False)


def _master(tmp_path, settings: dict):
    (tmp_path / "master").write_text(yaml.safe_dump({"root_dir": str(tmp_path / "root"), **settings}))
    return load_master_config(str(tmp_path))


def test_defaults_are_loopback_port_8000_no_clients_no_cors(tmp_path):
    cfg = _master(tmp_path, {})
    assert (cfg.api_host, cfg.api_port, cfg.api_enable_clients, cfg.api_cors_origins) == ("127.0.0.1", 8000, (), ())
    assert (cfg.ssl_crt, cfg.ssl_key, cfg.disable_ssl, cfg.webhook_disable_auth, cfg.stats_disable_auth) == \
        ("", "", False, False, False)
    assert cfg.max_request_body_size == 1048576
    assert cfg.api_pidfile == str(tmp_path / "root" / "var/run/rx-api.pid")
    assert cfg.api_log_file == str(tmp_path / "root" / "var/log/rx/api")


def test_salts_netapi_enable_clients_is_read(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="rx.config"):
        cfg = _master(tmp_path, {"netapi_enable_clients": ["local", "wheel"]})
    assert cfg.api_enable_clients == ("local", "wheel")
    assert "use api_enable_clients" in caplog.text


def test_a_rest_cherrypy_block_sets_rx_apis_settings(tmp_path, caplog):
    (tmp_path / "root").mkdir()
    with caplog.at_level(logging.WARNING, logger="rx.config"):
        cfg = _master(tmp_path, {"rest_cherrypy": {"port": 8443, "host": "0.0.0.0", "ssl_crt": "etc/crt.pem",
                                                   "ssl_key": "etc/key.pem", "webhook_disable_auth": True,
                                                   "thread_pool": 100}})
    assert (cfg.api_port, cfg.api_host, cfg.webhook_disable_auth) == (8443, "0.0.0.0", True)
    assert cfg.ssl_crt == str(tmp_path / "root" / "etc/crt.pem") and cfg.ssl_key.endswith("etc/key.pem")
    assert "'thread_pool' is not used by rx-api" in caplog.text


def test_a_top_level_setting_wins_over_the_salt_block(tmp_path):
    cfg = _master(tmp_path, {"api_port": 9000, "rest_tornado": {"port": 8443, "cors_origin": "https://ui.example"}})
    assert cfg.api_port == 9000 and cfg.api_cors_origins == ("https://ui.example",)


@pytest.mark.parametrize("settings,key", [
    ({"api_enable_clients": ["local", "ssh"]}, "api_enable_clients"),
    ({"api_enable_clients": "local"}, "api_enable_clients"),
    ({"api_host": "example.com"}, "api_host"),
    ({"api_port": 0}, "api_port"),
    ({"api_cors_origins": ["javascript:alert(1)"]}, "api_cors_origins"),
    ({"max_request_body_size": 10}, "max_request_body_size"),
    ({"disable_ssl": "yes"}, "disable_ssl"),
    ({"rest_cherrypy": {"port": "http"}}, "rest_cherrypy: port"),
    ({"rest_cherrypy": ["port"]}, "rest_cherrypy"),
])
def test_bad_values_stop_the_load_naming_the_key(tmp_path, settings, key):
    with pytest.raises(ConfigError) as exc:
        _master(tmp_path, settings)
    assert exc.value.key == key


def _api(**kw):
    base = {"api_host": "127.0.0.1", "ssl_crt": "", "ssl_key": "", "disable_ssl": False}
    return SimpleNamespace(**{**base, **kw})


TLS_RULE = [
    (_api(), ""),
    (_api(api_host="::1"), ""),
    (_api(api_host="127.0.0.2"), ""),
    (_api(api_host="0.0.0.0"), "refusing to listen on 0.0.0.0 without TLS"),
    (_api(api_host="::"), "without TLS"),
    (_api(api_host="192.0.2.10"), "without TLS"),
    (_api(api_host="0.0.0.0", disable_ssl=True), ""),
    (_api(api_host="0.0.0.0", ssl_crt="c", ssl_key="k"), ""),
    (_api(ssl_crt="c"), "ssl_key: TLS needs both"),
    (_api(api_host="0.0.0.0", ssl_key="k", disable_ssl=True), "ssl_crt: TLS needs both"),
]


@pytest.mark.parametrize("cfg,words", TLS_RULE)
def test_the_tls_rule(cfg, words):
    problem = tls_problem(cfg)
    assert (words in problem) if words else problem == ""


def _rx_api(tmp_path, settings: dict) -> subprocess.CompletedProcess:
    (tmp_path / "master").write_text(yaml.safe_dump({"root_dir": str(tmp_path / "root"), **settings}))
    return subprocess.run([sys.executable, "-m", "rx.api.daemon", "-c", str(tmp_path)], capture_output=True,
                          text=True, timeout=60)


def test_rx_api_refuses_a_public_address_without_tls(tmp_path):
    done = _rx_api(tmp_path, {"api_host": "0.0.0.0"})
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without TLS" in done.stderr and "disable_ssl" in done.stderr


def test_rx_api_refuses_a_certificate_it_cannot_load(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "crt.pem").write_text("not a certificate")
    done = _rx_api(tmp_path, {"ssl_crt": "crt.pem", "ssl_key": "key.pem"})
    assert done.returncode == 2 and "ssl_crt/ssl_key" in done.stderr, done.stderr
