"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): `harness` starts a fleet and
rx-api, `test_dashboard` drives the pages, `screenshots` writes docs/img/."""
