"""Issue #13 on the sans-IO side: Salt's spellings of rx's and rx-key's flags, --no-parse=NAMES, the -p bar's
line, and rx-key --gen-keys' files."""

from __future__ import annotations

import base64
import io
import os
import select
import stat

import pytest

from rx.client import cli, keycli
from rx.client.cliargs import ALL, cli_words, no_parse_names, split_args, stdin_words
from rx.client.keygen import KeyGenError, gen_keys
from rx.client.progress import ProgressBar, bar_line
from rx.transport.crypto import Identity

RX_SPELLINGS = [
    (["--output", "json"], {"out": "json", "out_given": True}),
    (["--out", "yaml"], {"out": "yaml", "out_given": True}),
    ([], {"out": "nested", "out_given": False}),
    (["--output-indent", "2", "--output-file", "f", "--output-file-append"],
     {"out_indent": 2, "out_file": "f", "out_file_append": True}),
    (["--no-colour"], {"no_color": True}), (["--force-colour"], {"force_color": True}),
    (["-s"], {"static": True}), (["--batch-size", "25%"], {"batch": "25%"}), (["-b", "2"], {"batch": "2"}),
    (["-p"], {"progress": True}), (["--progress"], {"progress": True}), (["--show-jid"], {"show_jid": True}),
    (["--hide-timeout"], {"hide_timeout": True}), (["-V"], {"versions_report": True}),
    (["--documentation"], {"doc": True}), (["-l", "garbage"], {"log_level": "garbage"}),
    (["--log-level", "quiet"], {"log_level": "quiet"}), (["--args-stdin"], {"args_stdin": True}),
    (["--no-parse=a,b"], {"no_parse": "a,b"}), (["--no-parse"], {"no_parse": ALL}),
    (["--async"], {"async_": True}),
]


@pytest.mark.parametrize("flags, expect", RX_SPELLINGS, ids=[" ".join(f) or "none" for f, _ in RX_SPELLINGS])
def test_rx_understands_salts_spellings(flags, expect, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    opts = cli.parse(["*", "test.ping", *flags])
    assert (opts.target, opts.fun) == ("*", "test.ping")
    assert {k: getattr(opts, k) for k in expect} == expect


def test_args_stdin_lines_come_after_the_command_line(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a b\nk=1\n--out=json\n--no-parse\n"))
    opts = cli.parse(["web*", "test.arg", "first", "--args-stdin"])
    assert (opts.target, opts.fun, opts.args, opts.out, opts.no_parse) == ("web*", "test.arg", ["first", "a b", "k=1"],
                                                                           "json", ALL)


def test_a_bare_no_parse_never_takes_the_target_as_its_value():
    opts = cli.parse(["--no-parse", "web*", "test.arg", "1"])
    assert (opts.target, opts.fun, opts.args, opts.no_parse) == ("web*", "test.arg", ["1"], ALL)


@pytest.mark.parametrize("value, names", [
    (None, set()), ("", set()), (True, {ALL}), (ALL, {ALL}), ("a", {"a"}), ("a, b,,c ", {"a", "b", "c"}),
])
def test_no_parse_names(value, names):
    assert no_parse_names(value) == names


@pytest.mark.parametrize("raw, no_parse, args, kwargs", [
    (["1", "k=1", "j=2"], (), [1], {"k": 1, "j": 2}),
    (["1", "k=1", "j=2"], {"k"}, [1], {"k": "1", "j": 2}),  # Salt: only the names given stay strings
    (["1", "k=1", "j=2"], {"k", "j"}, [1], {"k": "1", "j": "2"}),
    (["1", "k=1"], {"1"}, [1], {"k": 1}),  # positional arguments are parsed whatever the names
    (["1", "k=1", "j=[2]"], {ALL}, ["1"], {"k": "1", "j": "[2]"}),  # rx's bare --no-parse
])
def test_split_args_with_no_parse_names(raw, no_parse, args, kwargs):
    assert split_args(raw, no_parse=no_parse) == (args, kwargs)


def test_cli_words_and_stdin_words():
    assert cli_words(["--no-parse", "*", "--no-parse=x", "--no-parsed"]) == [f"--no-parse={ALL}", "*",
                                                                             "--no-parse=x", "--no-parsed"]
    assert stdin_words(io.StringIO("ls -l\r\nk=1\n\nlast")) == ["ls -l", "k=1", "", "last"]


@pytest.mark.parametrize("done, total, columns, line", [
    (0, 0, 80, "[" + "." * 50 + "]  0/? returned  1.5s"),
    (0, 4, 80, "[" + "." * 50 + "]  0/4 returned  1.5s"),
    (1, 4, 80, "[" + "#" * 12 + "." * 38 + "]  1/4 returned  1.5s"),
    (4, 4, 80, "[" + "#" * 50 + "]  4/4 returned  1.5s"),
    (5, 4, 80, "[" + "#" * 50 + "]  5/4 returned  1.5s"),
    (2, 4, 40, "[" + "#" * 8 + "." * 9 + "]  2/4 returned  1.5s"),
    (2, 4, 20, ("[" + "#" * 5 + "." * 5 + "]  2/4 returned  1.5s")[:19]),  # never wider than the terminal
])
def test_bar_line(done, total, columns, line):
    assert bar_line(done, total, 1.5, columns) == line


def test_the_bar_draws_on_a_terminal_only():
    pipe = io.StringIO()
    bar = ProgressBar(pipe)
    bar.update(1, 2)
    bar.clear()
    bar.close()
    assert not bar.on and pipe.getvalue() == ""
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            bar = ProgressBar(tty)
            bar.update(1, 2)
            bar.close()
            bar.update(2, 2)  # closed: draws no more
        chunks = []
        while select.select([master], [], [], 0.5)[0]:  # all the bar wrote: one read may get only the first write
            chunks.append(os.read(master, 4096))
        shown = b"".join(chunks).decode()
    finally:
        os.close(master)
        os.close(slave)
    assert "1/2 returned" in shown and shown.endswith("\r\x1b[K") and "2/2" not in shown
    assert not ProgressBar(io.StringIO(), enabled=False).on


def test_gen_keys_makes_a_pair_in_the_formats_of_where_it_goes(tmp_path):
    pair = gen_keys("web1", tmp_path / "new")
    assert pair.made and stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    ident = Identity.from_bytes(pair.private.read_bytes())  # the minion's minion.key: raw Ed25519
    assert pair.public.read_bytes() == base64.b64encode(ident.public) + b"\n"  # the key store's format
    assert pair.fingerprint == ident.fingerprint
    again = gen_keys("web1", tmp_path / "new")
    assert not again.made and again.fingerprint == pair.fingerprint
    assert Identity.from_bytes(pair.private.read_bytes()).public == ident.public  # kept, not replaced


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "m.pub").unlink(), "exists but"),
    (lambda d: (d / "m.key").unlink(), "exists but"),
    (lambda d: (d / "m.pub").write_bytes(base64.b64encode(Identity.generate().public) + b"\n"), "is not the public"),
    (lambda d: (d / "m.key").write_bytes(b"short"), "is not an rx private key"),
])
def test_gen_keys_refuses_half_or_mismatched_pairs(tmp_path, damage, message):
    gen_keys("m", tmp_path)
    damage(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(KeyGenError, match=message):
        gen_keys("m", tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("name", ["../m", "a/b", ".hidden", ""])
def test_gen_keys_takes_minion_ids_only(tmp_path, name):
    with pytest.raises(KeyGenError, match="not a minion id"):
        gen_keys(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_gen_keys_dir_must_be_a_directory(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(KeyGenError, match="not a directory"):
        gen_keys("m", tmp_path / "f")


@pytest.mark.parametrize("word, state", sorted(keycli.LIST_STATES.items()))
def test_rx_key_list_words(word, state):
    assert keycli.build_parser().parse_args(["-l", word]).list_state == state


def test_rx_key_actions_exclude_each_other_and_default_to_listing(capsys):
    opts = keycli.build_parser().parse_args([])
    assert not any((opts.list_all, opts.list_state, opts.accept, opts.print_glob, opts.gen_keys, opts.rotate))
    with pytest.raises(SystemExit) as exc:
        keycli.build_parser().parse_args(["-L", "--rotate"])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err
