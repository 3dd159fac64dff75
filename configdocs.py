"""What people read about the config: the effective settings as YAML (`--print-config`) and
docs/config.md, both generated from the declarations in config.py so they cannot drift."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import yaml

from rx.apiconfig import ApiSettings
from rx.apieventsconfig import ApiEventSettings
from rx.authconfig import AuthSettings
from rx.config import MasterConfig, MinionConfig, _Common
from rx.configspec import keys, markdown_table


def config_yaml(cfg: MasterConfig | MinionConfig) -> str:
    """The effective settings as YAML, every key with its paths resolved (what `--print-config` shows)."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    values = {k: dict(v) if isinstance(v, Mapping) else v for k, v in values.items()}
    return yaml.safe_dump(values, sort_keys=False, default_flow_style=False, allow_unicode=True)


_REFERENCE_INTRO = """\
# rx configuration reference

<!-- Generated from the declarations in config.py by `make docs` (python -m rx.config --markdown > docs/config.md);
     edit those, not this file. tests/unit/test_config.py fails when this file is out of date. -->

YAML files `master` and `minion` in the config dir: `-c DIR` > `$RX_CONFIG_DIR` > `/etc/rx`. A missing
file means all defaults. Unknown keys log a warning with a "did you mean"; a value of the wrong type or
out of range exits 2 before any daemon starts, naming the file, key, value and what is allowed. A relative
path (the path defaults included) is taken under `root_dir`; an absolute one is used as is. `rx-master --print-config` and
`rx-minion --print-config` print the effective settings.
"""


def reference_markdown() -> str:
    """docs/config.md: every key of master and minion with type, default, allowed values and doc."""
    common, auth, api, events = keys(_Common), keys(AuthSettings), keys(ApiSettings), keys(ApiEventSettings)
    parts = [_REFERENCE_INTRO, "## Both files\n", markdown_table(common.values(), ("master", "minion"))]
    for cls in (MasterConfig, MinionConfig):
        own = [key for name, key in keys(cls).items()
               if name not in common and name not in auth and name not in api and name not in events]
        parts += [f"## `{cls.ROLE}`\n", markdown_table(own, (cls.ROLE,))]
    parts.insert(-2, "### `master`: users who are not root (README, Users and rights)\n")
    parts.insert(-2, markdown_table(auth.values(), ("master",)))
    parts.insert(-2, "### `master`: rx-api (README, rx-api; docs/api.md)\n")
    parts.insert(-2, markdown_table(api.values(), ("master",)))
    parts.insert(-2, "### `master`: rx-api's event stream (docs/api-events.md)\n")
    parts.insert(-2, markdown_table(events.values(), ("master",)))
    return "\n".join(parts)
