"""`python -m rx.api --markdown`: docs/api.md; `python -m rx.api [rx-api options]`: the daemon."""

import sys

if sys.argv[1:] == ["--markdown"]:
    from rx.api.docs import reference_markdown
    sys.stdout.write(reference_markdown())
else:
    from rx.api.daemon import main
    main()
