"""`python -m rx.master.metrics --markdown`: docs/metrics.md."""

import sys

from rx.master.metrics.catalog import reference_markdown

if sys.argv[1:] != ["--markdown"]:
    sys.exit("usage: python -m rx.master.metrics --markdown")
sys.stdout.write(reference_markdown())
