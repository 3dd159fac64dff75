#!/bin/sh
# Debian's Chromium for the dashboard's browser tests (`make browser`, run by `make test`): Playwright drives
# this system browser (its own browser download is not used).  Does nothing when a Chromium is installed;
# without root or apt it says why and leaves the browser tests to skip (they print the reason).
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "browser: no chromium here and not root with apt-get: the dashboard's browser tests will skip" >&2
    exit 0
fi
echo "browser: installing Debian's chromium" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }; then
    echo "browser: apt-get install chromium failed: the dashboard's browser tests will skip" >&2
fi
exit 0
