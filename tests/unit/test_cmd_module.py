"""rx.modules.cmd on this machine: real processes, real files, real users (runas where root)."""

from __future__ import annotations

import os
import pwd
import stat

import pytest

from rx.modules import CommandError, ExecContext, Result
from rx.modules import cmd
from tests.support.procs import proc_state, wait_for

CTX = ExecContext()
"""No master: a job outside a minion (salt:// sources say they need one)."""

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="runas needs the test to run as root (CI does)")


def test_run_interleaves_stdout_and_stderr_and_passes_the_retcode_on():
    assert cmd.run("echo out; echo err >&2; echo out2") == Result("out\nerr\nout2", 0)
    assert cmd.run("echo failing; exit 3") == Result("failing", 3)
    assert cmd.run("echo out; echo err >&2", redirect_stderr=False) == Result("out", 0)


def test_run_all_has_salts_shape():
    r = cmd.run_all("echo hi; echo oops >&2; exit 2")
    assert r.retcode == 2
    assert set(r.value) == {"pid", "retcode", "stdout", "stderr"}
    assert (r.value["retcode"], r.value["stdout"], r.value["stderr"]) == (2, "hi", "oops")
    assert isinstance(r.value["pid"], int) and r.value["pid"] > 0


def test_run_stdout_and_run_stderr_return_one_stream():
    assert cmd.run_stdout("echo a; echo b >&2") == Result("a", 0)
    assert cmd.run_stderr("echo a; echo b >&2; exit 1") == Result("b", 1)


def test_a_list_never_goes_through_a_shell():
    assert cmd.run(["echo", "$HOME; touch /tmp/rx-never", "|", "x"]).value == "$HOME; touch /tmp/rx-never | x"
    assert not os.path.exists("/tmp/rx-never")
    assert cmd.run(["printf", "%s|", 1, 2.5]).value == "1|2.5|"


def test_a_string_goes_to_the_shell_unless_python_shell_is_false():
    assert cmd.run("echo a b | tr ' ' -").value == "a-b"
    assert cmd.run("echo 'a b' | tr ' ' -", python_shell=False).value == "a b | tr   -"  # words, no pipe
    with pytest.raises(CommandError, match="cannot split"):
        cmd.run("echo 'unclosed", python_shell=False)


def test_the_shell_can_be_chosen():
    assert cmd.run("echo $0", shell="/bin/sh").value == "/bin/sh"
    assert cmd.run("echo $0", shell="sh").value.endswith("/sh")
    with pytest.raises(CommandError, match="not an executable"):
        cmd.run("true", shell="/nonexistent/shell")


def test_output_that_is_not_utf8_comes_back_with_replacement_characters():
    r = cmd.run(r"printf 'caf\351 \377\376 ok'")
    assert r == Result("caf\ufffd \ufffd\ufffd ok", 0)
    assert cmd.run_all(r"printf '\377' >&2").value["stderr"] == "\ufffd"


def test_a_command_printing_100_mb_keeps_the_first_bytes_and_says_so():
    r = cmd.run("head -c 100000000 /dev/zero | tr '\\0' x", output_limit=1_000_000)
    assert r.retcode == 0
    kept, note = r.value.split("\n", 1)
    assert kept == "x" * 1_000_000
    assert "99000000 more bytes of stdout were dropped" in note and "output_limit" in note
    r = cmd.run_all("head -c 3000 /dev/zero | tr '\\0' o; head -c 3000 /dev/zero | tr '\\0' e >&2",
                    output_limit=4000)
    assert len(r.value["stdout"].split("\n")[0]) + len(r.value["stderr"].split("\n")[0]) == 4000


def test_the_default_output_limit_keeps_a_return_under_the_wire_string_limit():
    r = cmd.run("head -c 9000000 /dev/zero | tr '\\0' x")
    assert len(r.value.encode()) < 8 * 2**20 and "more bytes of stdout were dropped" in r.value


def test_a_timeout_kills_the_command_and_what_it_started(tmp_path):
    pidfile = tmp_path / "bg.pid"
    r = cmd.run_all(f"sleep 300 & echo $! > {pidfile}; echo started; sleep 300", timeout=1)
    assert r.retcode == 1 and r.value["retcode"] == 1
    assert r.value["stdout"] == "started" and "timed out after 1s" in r.value["stderr"]
    bg = int(pidfile.read_text())
    wait_for(lambda: proc_state(bg) in ("", "Z", "X"), what="the background sleep to be gone")
    assert "timed out" in cmd.run("sleep 300", timeout=0.5).value
    with pytest.raises(CommandError, match="timeout"):
        cmd.run("true", timeout=-1)


def test_stdin_env_cwd_and_umask(tmp_path):
    assert cmd.run("cat", stdin="line1\nline2\n").value == "line1\nline2"
    big = "y" * 1_000_000
    assert cmd.run("wc -c", stdin=big).value == "1000000"
    assert cmd.run("echo $RX_A-$RX_B", env={"RX_A": "one", "RX_B": 2}).value == "one-2"
    assert cmd.run("env", env={"ONLY": "this"}, clean_env=True).value.splitlines()[0:1] != []
    assert "HOME=" not in cmd.run("env", env={"ONLY": "this"}, clean_env=True).value
    assert cmd.run("echo $PATH", prepend_path="/opt/rx-bin").value.startswith("/opt/rx-bin:")
    assert cmd.run("pwd", cwd=str(tmp_path)).value == str(tmp_path)
    assert cmd.run("pwd").value == os.path.expanduser("~")
    with pytest.raises(CommandError, match="cwd"):
        cmd.run("pwd", cwd="relative/dir")
    with pytest.raises(CommandError, match="env"):
        cmd.run("true", env="A=1")
    cmd.run(f"echo x > {tmp_path}/masked", umask="077")
    assert stat.S_IMODE(os.stat(tmp_path / "masked").st_mode) == 0o600


def test_ignore_retcode_and_success_retcodes_make_the_job_succeed():
    assert cmd.run("exit 5", ignore_retcode=True) == Result("", 0)
    assert cmd.run_all("exit 5", success_retcodes=[5]).retcode == 0
    assert cmd.run_all("exit 5", success_retcodes=[5]).value["retcode"] == 5
    assert cmd.run("exit 6", success_retcodes=[5]).retcode == 6


def test_retcode_returns_the_status_and_makes_it_the_jobs():
    assert cmd.retcode("exit 4") == Result(4, 4)
    assert cmd.retcode("exit 4", ignore_retcode=True) == Result(4, 0)
    assert cmd.retcode("head -c 100000000 /dev/zero") == Result(0, 0)


def test_shell_always_uses_the_shell():
    assert cmd.shell("echo a; echo b | tr b c") == Result("a\nc", 0)


def test_a_missing_program_is_a_clear_error():
    with pytest.raises(CommandError, match="cannot run 'rx-no-such-program': no such file"):
        cmd.run(["rx-no-such-program", "-x"])
    with pytest.raises(CommandError, match="no such file"):
        cmd.run("rx-no-such-program", python_shell=False)
    r = cmd.run("rx-no-such-program")  # the shell says so itself, with its 127
    assert r.retcode == 127 and "not found" in r.value


@pytest.mark.parametrize("bad", ["", "   ", [], None, {"a": 1}, ["ok", None]])
def test_bad_commands_are_refused(bad):
    with pytest.raises(CommandError):
        cmd.run(bad)


def test_a_yaml_boolean_command_still_runs():
    assert cmd.run(True) == Result("", 0)
    assert cmd.run(False).retcode == 1


@pytest.fixture
def shared_dir():
    """A directory every user may write (tmp_path's parents are private to root)."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="rx-test-cmd-")
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@needs_root
def test_runas_switches_user_groups_home_and_default_cwd(shared_dir):
    nobody = pwd.getpwnam("nobody")
    out = cmd.run("id -u; id -g; echo $HOME $USER $LOGNAME; pwd", runas="nobody").value.splitlines()
    assert out[:2] == [str(nobody.pw_uid), str(nobody.pw_gid)]
    assert out[2] == f"{nobody.pw_dir} nobody nobody"
    assert out[3] == (nobody.pw_dir if os.path.isdir(nobody.pw_dir) else "/")
    cmd.run(f"touch {shared_dir}/made", runas="nobody")
    assert os.stat(f"{shared_dir}/made").st_uid == nobody.pw_uid
    assert cmd.run("id -gn", runas="nobody", group="root").value == "root"
    r = cmd.run_all("cat /etc/shadow", runas="nobody")
    assert r.retcode != 0 and "Permission denied" in r.value["stderr"]


def test_runas_a_user_that_does_not_exist_is_a_clear_error():
    with pytest.raises(CommandError, match="user 'rx-no-such-user' does not exist"):
        cmd.run("id", runas="rx-no-such-user")
    with pytest.raises(CommandError, match="group 'rx-no-such-group' does not exist"):
        cmd.run("id", group="rx-no-such-group")


@pytest.mark.skipif(ROOT, reason="checks the refusal of a minion that does not run as root")
def test_runas_without_root_is_refused():
    with pytest.raises(CommandError, match="not root"):
        cmd.run("id", runas="nobody" if pwd.getpwuid(os.geteuid()).pw_name != "nobody" else "root")


def test_script_runs_a_local_script_with_args(tmp_path):
    script = tmp_path / "hello.sh"
    script.write_text('#!/bin/sh\necho "args:$#:$1:$2"; pwd; echo err >&2; exit 3\n')
    r = cmd.script(CTX, str(script), args="one 'two words'")
    assert r.retcode == 3
    out = r.value["stdout"].splitlines()
    assert out[0] == "args:2:one:two words" and out[1].startswith("/tmp") and "rx-script-" in out[1]
    assert r.value["stderr"] == "err"
    assert not os.path.exists(out[1]), "the temporary copy is removed"
    assert cmd.script(CTX, str(script), args=["a b", "c"]).value["stdout"].splitlines()[0] == "args:2:a b:c"
    assert cmd.script(CTX, str(script), args="x", cwd=str(tmp_path)).value["stdout"].splitlines()[1] == str(tmp_path)


def test_script_args_go_to_the_shell_as_written_with_python_shell(tmp_path):
    script = tmp_path / "count.sh"
    script.write_text('#!/bin/sh\necho "$#:$1"\n')
    assert cmd.script(CTX, str(script), args="$((1+2)) | tr 3 x", python_shell=True).value["stdout"] == "1:x"
    assert cmd.script(CTX, str(script), args="$((1+2))").value["stdout"] == "1:$((1+2))"


def test_script_without_a_shebang_runs_in_the_shell(tmp_path):
    script = tmp_path / "plain"
    script.write_text("echo plain:$1\n")
    script.chmod(0o644)
    assert cmd.script(CTX, str(script), args="z").value["stdout"] == "plain:z"


@needs_root
def test_script_runas(tmp_path):
    script = tmp_path / "who.sh"
    script.write_text("#!/bin/sh\nid -un\n")
    assert cmd.script(CTX, str(script), runas="nobody").value["stdout"] == "nobody"


@pytest.mark.parametrize("source, message", [
    ("salt://scripts/x.sh", "needs the master's file server: run it as a job"),  # no master outside a minion
    ("rx://scripts/x.sh", "needs the master's file server: run it as a job"),
    ("https://example.com/x.sh", "not supported"),
    ("relative/x.sh", "absolute path"),
    ("/nonexistent/x.sh", "cannot read the script"),
    ("/etc", "not a regular file"),
])
def test_script_sources_that_cannot_run_are_clear_errors(source, message):
    with pytest.raises(CommandError, match=message):
        cmd.script(CTX, source)


def test_which_and_has_exec():
    assert cmd.which("sh") is not None and os.access(cmd.which("sh"), os.X_OK)
    assert cmd.which("rx-no-such-program") is None
    assert cmd.has_exec("sh") is True and cmd.has_exec("rx-no-such-program") is False
