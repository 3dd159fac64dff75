"""rx.master.autosign: Salt's autosign_file on a real file (tmp_path)."""

from __future__ import annotations

import logging
import os

import pytest

from rx.master.autosign import AutoSign

LINES = """\
# pre-authorised minions
web1.example.com
  db-*.example.com
cache\\d+\\.example\\.com

#not-a-comment-inside-the-id.example.com is still a comment
[bad regex but a glob? no
"""

MATCHES = [
    ("web1.example.com", True),          # the same string
    ("web2.example.com", False),
    ("db-01.example.com", True),         # a glob
    ("DB-01.example.com", False),        # case-sensitive, as ids are
    ("cache12.example.com", True),       # a regular expression matching the whole id
    ("cache12.example.com.evil", False),  # ... the whole id, not a prefix
    ("xcache12.example.com", False),
    ("# pre-authorised minions", False),  # comments are not patterns
    ("[bad regex but a glob? no", True),  # an invalid regex is still compared as a string
    ("", False),
]


@pytest.fixture
def autosign_file(tmp_path):
    path = tmp_path / "autosign.conf"
    path.write_text(LINES)
    path.chmod(0o644)
    return path


@pytest.mark.parametrize("minion_id, matched", MATCHES)
def test_matching_follows_salt(autosign_file, minion_id, matched):
    assert AutoSign(str(autosign_file)).matches(minion_id) is matched


def test_off_when_no_file_is_configured():
    assert AutoSign("").matches("web1.example.com") is False


def test_the_file_is_read_again_when_it_changes(autosign_file):
    auto = AutoSign(str(autosign_file))
    assert not auto.matches("new1")
    autosign_file.write_text(LINES + "new*\n")
    assert auto.matches("new1")
    autosign_file.write_text("")
    assert not auto.matches("new1") and not auto.matches("web1.example.com")


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666, 0o620])
def test_a_file_others_can_write_is_ignored_with_a_warning(autosign_file, caplog, mode):
    autosign_file.chmod(mode)
    auto = AutoSign(str(autosign_file))
    with caplog.at_level(logging.WARNING, logger="rx.master.autosign"):
        assert not auto.matches("web1.example.com")
        assert not auto.matches("web1.example.com")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "writable by" in warnings[0] and str(autosign_file) in warnings[0]
    autosign_file.chmod(0o600)
    assert auto.matches("web1.example.com")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_a_file_owned_by_another_user_is_ignored(autosign_file, caplog):
    os.chown(autosign_file, 65534, -1)
    with caplog.at_level(logging.WARNING, logger="rx.master.autosign"):
        assert not AutoSign(str(autosign_file)).matches("web1.example.com")
    assert "owned by uid 65534" in caplog.text


def test_a_missing_file_or_a_directory_matches_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="rx.master.autosign"):
        assert not AutoSign(str(tmp_path / "none")).matches("web1")
        assert not AutoSign(str(tmp_path)).matches("web1")
    assert "cannot read it" in caplog.text and "not a regular file" in caplog.text
