"""The minion's grains file, `<config dir>/grains` (Salt's `/etc/salt/grains`): a YAML mapping of static
grains that `grains.setval` & co write and the minion merges into its grains.  Here, below both the
`grains` module and the minion, so the minion reads it without importing any execution module (a job
process inherits what the minion imported)."""

from __future__ import annotations

import os
from typing import Any, Mapping

GRAINS_FILE = "grains"


class GrainsFileError(Exception):
    """The grains file cannot be placed, read or parsed; the message says what to do."""


def grains_file_path(config: Any) -> str:
    """`<config_dir>/grains` of a minion config."""
    if config is None or not getattr(config, "config_dir", ""):
        raise GrainsFileError("the minion config was not loaded, so the grains file's place is unknown")
    return os.path.join(config.config_dir, GRAINS_FILE)


def read_grains_file(path: str) -> dict[str, Any]:
    """The grains in the file ({} if there is none); GrainsFileError if it is not a YAML mapping."""
    import yaml
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise GrainsFileError(f"cannot read the grains file {path}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise GrainsFileError(f"the grains file {path} is not valid YAML ({exc}): fix or remove it") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise GrainsFileError(f"the grains file {path} must be a YAML mapping of grain names: fix or remove it")
    return data


def write_grains_file(path: str, grains: Mapping[str, Any]) -> None:
    """Replace the file atomically (a temp file beside it, fsync, rename), keeping its mode."""
    import yaml
    directory = os.path.dirname(path)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = 0o644
    tmp = os.path.join(directory, f".grains.{os.getpid()}.tmp")  # written under the config dir's lock
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(dict(grains), f, default_flow_style=False, allow_unicode=True)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
