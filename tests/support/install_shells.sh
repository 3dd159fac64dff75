#!/bin/sh
# Debian's zsh and fish for the shell-completion tests (`make shells`, run by `make test`); bash is always
# there.  Does nothing when both are installed; without root or apt it says why and leaves the zsh and fish
# tests to skip (they print the reason).
if command -v zsh >/dev/null 2>&1 && command -v fish >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "shells: zsh or fish missing and not root with apt-get: their completion tests will skip" >&2
    exit 0
fi
echo "shells: installing Debian's zsh and fish" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends zsh fish >/dev/null; }; then
    echo "shells: apt-get install zsh fish failed: their completion tests will skip" >&2
fi
exit 0
