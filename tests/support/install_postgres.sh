#!/bin/sh
# Debian's PostgreSQL server for the job-store tests (`make pg-server`, run by `make test`).
# Does nothing when a server is already installed; without root or apt it says why and leaves the tests
# to skip (they print the reason).
found() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
if found; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "pg-server: no PostgreSQL server here and not root with apt-get: the PostgreSQL tests will skip" >&2
    exit 0
fi
echo "pg-server: installing Debian's postgresql package" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }; then
    echo "pg-server: apt-get install postgresql failed: the PostgreSQL tests will skip" >&2
fi
exit 0
