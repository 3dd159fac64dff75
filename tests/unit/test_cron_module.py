"""rx.modules.cron: the crontab text as Salt shows it (real crontab text: Debian's header, a table
Salt managed, one rx wrote), the job edits, refused input, and the module's availability here."""

from __future__ import annotations

import shutil

import pytest

from rx.minion.registry import Registry, UnknownFunction
from rx.modules import CommandError
from rx.modules import cron

DEBIAN_HEADER = """\
# Edit this file to introduce tasks to be run by cron.
#
# m h  dom mon dow   command
MAILTO=root
17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly
"""

SALT_MANAGED = DEBIAN_HEADER + """\
# Lines below here are managed by Salt, do not edit
PATH=/usr/local/bin:/usr/bin:/bin
# nightly backup SALT_CRON_IDENTIFIER:backup
0 2 * * * /usr/local/bin/backup --all
#DISABLED#*/5 * * * * /usr/local/bin/poll
# SALT_CRON_IDENTIFIER:boot
@reboot /usr/local/bin/on-boot
# two line
# comment
30 4 1 * 0 echo 'monthly' > /tmp/m
"""


def test_parse_a_table_salt_managed():
    tab = cron.parse(SALT_MANAGED)
    assert tab["pre"] == DEBIAN_HEADER.splitlines()
    assert tab["env"] == [{"name": "PATH", "value": "/usr/local/bin:/usr/bin:/bin"}]
    assert tab["crons"] == [
        {"minute": "0", "hour": "2", "daymonth": "*", "month": "*", "dayweek": "*", "identifier": "backup",
         "cmd": "/usr/local/bin/backup --all", "comment": "nightly backup", "commented": False},
        {"minute": "*/5", "hour": "*", "daymonth": "*", "month": "*", "dayweek": "*", "identifier": None,
         "cmd": "/usr/local/bin/poll", "comment": None, "commented": True},
        {"minute": "30", "hour": "4", "daymonth": "1", "month": "*", "dayweek": "0", "identifier": None,
         "cmd": "echo 'monthly' > /tmp/m", "comment": "two line\ncomment", "commented": False},
    ]
    assert tab["special"] == [{"spec": "@reboot", "cmd": "/usr/local/bin/on-boot", "identifier": "boot",
                               "comment": "", "commented": False}]


def test_a_table_without_the_marker_is_all_pre():
    assert cron.parse(DEBIAN_HEADER) == {"pre": DEBIAN_HEADER.splitlines(), "crons": [], "special": [], "env": []}
    assert cron.parse("") == {"pre": [], "crons": [], "special": [], "env": []}


def test_render_then_parse_gives_the_same_table_under_rx_marker():
    tab = cron.parse(SALT_MANAGED)
    text = cron.render(tab)
    assert cron.TAG in text and "managed by Salt" not in text and "RX_CRON_IDENTIFIER:backup" in text
    assert text.startswith(DEBIAN_HEADER)
    assert cron.parse(text) == tab
    assert cron.render(cron.parse(text)) == text


def test_set_in_adds_updates_or_finds_present():
    tab = cron.parse(SALT_MANAGED)
    when = {"minute": "0", "hour": "2", "daymonth": "*", "month": "*", "dayweek": "*"}
    assert cron.set_in(tab, when, "/usr/local/bin/backup --all", False, None, "backup") == "present"
    assert cron.set_in(tab, {**when, "hour": "3"}, "/usr/local/bin/backup --all", False, None, "backup") == "updated"
    assert tab["crons"][0]["hour"] == "3" and tab["crons"][0]["comment"] == "nightly backup"
    assert cron.set_in(tab, when, "/bin/new", False, "fresh", None) == "new"
    assert cron.set_in(tab, when, "/bin/new", False, None, None) == "present"
    assert cron.set_in(tab, when, "/bin/new", True, None, None) == "updated"
    text = cron.render(tab)
    assert "# fresh\n#DISABLED#0 2 * * * /bin/new\n" in text
    assert "# nightly backup RX_CRON_IDENTIFIER:backup\n0 3 * * * /usr/local/bin/backup --all\n" in text


def test_rm_from_matches_the_command_and_the_times_given():
    tab = cron.parse(SALT_MANAGED)
    empty = dict.fromkeys(("minute", "hour", "daymonth", "month", "dayweek"))
    assert cron.rm_from(tab, "/usr/local/bin/poll", {**empty, "minute": "0"}, None) == "absent"
    assert cron.rm_from(tab, "/usr/local/bin/poll", {**empty, "minute": "*/5"}, None) == "removed"
    assert cron.rm_from(tab, "/usr/local/bin/poll", empty, None) == "absent"
    assert cron.rm_from(tab, "/usr/local/bin/backup --all", empty, None) == "absent", "it has an identifier"
    assert cron.rm_from(tab, "ignored", empty, "backup") == "removed"
    assert [j["cmd"] for j in tab["crons"]] == ["echo 'monthly' > /tmp/m"]


@pytest.mark.parametrize("kwargs, message", [
    ({"cmd": "/bin/a\n* * * * * /bin/evil"}, "no line breaks"),
    ({"minute": "1 2"}, "one word"),
    ({"minute": ""}, "one word"),
    ({"comment": "x\n* * * * * /bin/evil"}, "no line breaks"),
    ({"identifier": "a\rb"}, "no line breaks"),
    ({"cmd": "   "}, "must not be empty"),
])
def test_set_job_refuses_input_that_would_inject_lines(kwargs, message):
    args = {"user": "root", "minute": "0", "hour": "*", "daymonth": "*", "month": "*", "dayweek": "*", "cmd": "/bin/a"}
    with pytest.raises(CommandError, match=message):
        cron.set_job(**{**args, **kwargs})


def test_availability_follows_the_crontab_program():
    verdict = cron.__virtual__()
    if shutil.which("crontab") is None:
        assert verdict == (False, "the crontab program is not installed (Debian/Ubuntu: the cron package; "
                                  "RHEL/Fedora: cronie)")
        with pytest.raises(UnknownFunction, match="crontab program is not installed"):
            Registry().resolve("cron.list_tab")
    else:
        assert verdict is True
        assert isinstance(cron.list_tab("root"), dict)
