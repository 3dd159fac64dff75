"""Users' crontabs (through the `crontab` program), with Salt's functions and shapes.

As in Salt, the jobs rx manages sit below a marker line; what is above it is kept as `pre` and
never changed.  A crontab that Salt managed is read the same way (its marker and its
`SALT_CRON_IDENTIFIER` comments are understood), and written back with rx's marker.
"""

from __future__ import annotations

import os
from typing import Any

from rx.modules import CommandError

__all__ = ["list_tab", "ls", "set_job", "rm_job"]

TAG = "# Lines below here are managed by rx, do not edit"
_TAGS = (TAG, "# Lines below here are managed by Salt, do not edit")
ID_KEY = "RX_CRON_IDENTIFIER"
_ID_KEYS = (ID_KEY, "SALT_CRON_IDENTIFIER")
DISABLED = "#DISABLED#"
_FIELDS = ("minute", "hour", "daymonth", "month", "dayweek")


def __virtual__() -> Any:
    if not any(os.access(os.path.join(d, "crontab"), os.X_OK) for d in os.get_exec_path()):
        return False, "the crontab program is not installed (Debian/Ubuntu: the cron package; RHEL/Fedora: cronie)"
    return True


# ------------------------------------------------------------ the crontab text (pure)

def parse(text: str) -> dict:
    """A crontab's text as Salt shows it: {pre, crons, special, env}."""
    tab: dict[str, list] = {"pre": [], "crons": [], "special": [], "env": []}
    managed = False
    comment: str | None = None
    ident: str | None = None
    for line in text.splitlines():
        if line in _TAGS:
            managed = True
            continue
        if not managed:
            tab["pre"].append(line)
            continue
        commented = line.startswith(DISABLED)
        if commented:
            line = line[len(DISABLED):]
        if line.startswith("@"):
            spec, _, cmd = line.partition(" ")
            if cmd.strip():
                tab["special"].append({"spec": spec, "cmd": cmd.strip(), "identifier": ident, "comment": comment,
                                       "commented": commented})
            comment = ident = None
        elif line.startswith("#"):
            text_part, found = line.lstrip("# "), None
            for key in _ID_KEYS:
                if key in text_part:
                    text_part, _, found = text_part.partition(key)
                    text_part, found = text_part.rstrip(), found[1:] or None
                    break
            ident = found or ident
            comment = text_part if comment is None else f"{comment}\n{text_part}"
        elif "=" in line.split(" ", 1)[0] and not line.startswith("="):
            name, _, value = line.partition("=")
            tab["env"].append({"name": name, "value": value})
        elif len(line.split(" ")) > 5:
            parts = line.split(" ")
            job = dict(zip(_FIELDS, parts[:5]))
            job.update(identifier=ident, cmd=" ".join(parts[5:]), comment=comment, commented=commented)
            tab["crons"].append(job)
            comment = ident = None
    return tab


def _comment_lines(entry: dict) -> list[str]:
    lines = str(entry.get("comment") or "").splitlines() if entry.get("comment") else []
    if entry.get("identifier"):
        if lines:
            lines[-1] = f"{lines[-1]} {ID_KEY}:{entry['identifier']}"
        else:
            lines = [f"{ID_KEY}:{entry['identifier']}"]
    return [f"# {c}" for c in lines]


def render(tab: dict) -> str:
    """The crontab text of `tab` (the inverse of `parse` for what rx writes)."""
    lines = list(tab.get("pre", []))
    if tab.get("crons") or tab.get("special") or tab.get("env"):
        lines.append(TAG)
    lines += [f"{e['name']}={e['value']}" for e in tab.get("env", [])]
    for job in tab.get("crons", []):
        lines += _comment_lines(job)
        when = " ".join(str(job[f]) for f in _FIELDS)
        lines.append(f"{DISABLED if job.get('commented') else ''}{when} {job['cmd']}")
    for sp in tab.get("special", []):
        lines += _comment_lines(sp)
        lines.append(f"{DISABLED if sp.get('commented') else ''}{sp['spec']} {sp['cmd']}")
    return "".join(f"{line}\n" for line in lines)


def _clean(name: str, value: Any, spaces: bool = True) -> str:
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text or (not spaces and (not text or " " in text or "\t" in text)):
        raise CommandError(f"{name} {value!r}: " + ("no line breaks" if spaces else "one word, no line breaks"))
    return text


def _matches(job: dict, cmd: str | None, identifier: str | None) -> bool:
    if identifier:
        return job.get("identifier") == identifier
    return job.get("cmd") == cmd and not job.get("identifier")


def set_in(tab: dict, when: dict, cmd: str, commented: bool, comment: str | None, identifier: str | None) -> str:
    """Add or update the job in `tab`: 'new', 'updated' or 'present'."""
    new = {**when, "identifier": identifier, "cmd": cmd, "comment": comment, "commented": bool(commented)}
    for i, job in enumerate(tab["crons"]):
        if _matches(job, cmd, identifier):
            keep_comment = comment is None
            if keep_comment:
                new["comment"] = job.get("comment")
            if all(job.get(k) == new[k] for k in (*_FIELDS, "cmd", "commented", "comment")):
                return "present"
            tab["crons"][i] = new
            return "updated"
    tab["crons"].append(new)
    return "new"


def rm_from(tab: dict, cmd: str | None, when: dict, identifier: str | None) -> str:
    """Remove the matching jobs from `tab`: 'removed' or 'absent'."""
    keep = [j for j in tab["crons"]
            if not (_matches(j, cmd, identifier) and all(j.get(k) == str(v) for k, v in when.items() if v is not None))]
    if len(keep) == len(tab["crons"]):
        return "absent"
    tab["crons"] = keep
    return "removed"


# ------------------------------------------------------------ reading and writing a user's crontab

def _user(user: Any) -> list[str]:
    import pwd
    name = _clean("user", user, spaces=False)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise CommandError(f"user {name!r} does not exist") from None
    if os.geteuid() == 0:
        return ["-u", name]
    if pw.pw_uid != os.geteuid():
        raise CommandError(f"the minion does not run as root: it can only manage its own crontab, not {name}'s")
    return []


def _read(user: Any) -> str:
    from rx.modules._proc import run
    who = _user(user)
    p = run(["crontab", *who, "-l"], timeout=60)
    if p.retcode != 0:
        if "no crontab for" in p.stderr:
            return ""
        raise CommandError(f"crontab -l failed: {p.stderr.strip() or p.retcode}")
    return p.stdout


def _write(user: Any, text: str) -> None:
    from rx.modules._proc import run
    p = run(["crontab", *_user(user), "-"], stdin=text, timeout=60)
    if p.retcode != 0:
        raise CommandError(f"crontab refused the new table: {(p.stderr or p.stdout).strip() or p.retcode}")


def list_tab(user: str) -> dict:
    """Return the user's crontab as {pre, crons, special, env}: `pre` holds the lines above the
    managed marker; each cron is {minute, hour, daymonth, month, dayweek, cmd, identifier, comment,
    commented}.

    CLI example: rx '*' cron.list_tab root
    """
    return parse(_read(user))


ls = list_tab


def set_job(user: str, minute: Any, hour: Any, daymonth: Any, month: Any, dayweek: Any, cmd: str,
            commented: bool = False, comment: str | None = None, identifier: str | None = None) -> str:
    """Add the job to the user's crontab, or update the one with the same identifier (or, without
    one, the same command); return 'new', 'updated' or 'present'.

    CLI example: rx '*' cron.set_job root '*/5' '*' '*' '*' '*' '/usr/local/bin/check' identifier=check
    """
    when = {f: _clean(f, v, spaces=False) for f, v in zip(_FIELDS, (minute, hour, daymonth, month, dayweek))}
    cmd = _clean("cmd", cmd)
    if not cmd.strip():
        raise CommandError("cmd must not be empty")
    comment = None if comment is None else _clean("comment", comment)
    identifier = None if identifier in (None, "") else _clean("identifier", identifier)
    tab = parse(_read(user))
    status = set_in(tab, when, cmd, commented, comment, identifier)
    if status != "present":
        _write(user, render(tab))
    return status


def rm_job(user: str, cmd: str, minute: Any = None, hour: Any = None, daymonth: Any = None, month: Any = None,
           dayweek: Any = None, identifier: str | None = None) -> str:
    """Remove the job with this identifier (or, without one, this command, and the times given);
    return 'removed' or 'absent'.

    CLI example: rx '*' cron.rm_job root /usr/local/bin/check
    """
    when = dict(zip(_FIELDS, (minute, hour, daymonth, month, dayweek)))
    tab = parse(_read(user))
    status = rm_from(tab, _clean("cmd", cmd), when, None if identifier in (None, "") else str(identifier))
    if status == "removed":
        _write(user, render(tab))
    return status
