"""rx-api: salt-api's REST surface over tornado, for the master on this host (`rx-api`, rx.api.daemon).

`app` holds the route table and `make_app(ctx, extra_routes=())`; `base` what every request goes through
(`authenticate(handler) -> Principal`: the one token check, also for routes appended from outside);
`lowstate` the request bodies and lowstates (sans-IO); `clients` the lowstate clients; `wheel` the
wheel-style functions' allow-list; `handlers` and `resources` the routes; `context` what they share.
Nothing else in rx imports this package.  Reference: docs/api.md (`python -m rx.api --markdown`).
"""
