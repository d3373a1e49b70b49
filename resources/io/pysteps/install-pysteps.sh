#!/bin/sh
# Pinned install of the pysteps CLI on a Jenkins agent, cached per version.
# Shipped in the shared library (resources/io/pysteps/) so the library and the CLI always match.
#
# Environment (set by the pystepsCli step; constant text here, values only from the environment):
#   PYSTEPS_VERSION    the version to install (resources/io/pysteps/version.txt)
#   PYSTEPS_HOME       cache root on the agent (default: $HOME/.cache/pysteps/agent)
#   PYSTEPS_PIP_SPEC   what pip installs (default: pysteps==$PYSTEPS_VERSION from the configured
#                      index, e.g. PIP_INDEX_URL pointing at the company's Nexus PyPI proxy;
#                      a wheel path or URL also works)
#   PYSTEPS_PYTHON3    the interpreter that creates the virtualenv (default: python3, 3.9+)
# Prints the virtualenv's python as the last line. Safe to run concurrently (one install at a
# time, under a lock) and to rerun after a kill: the virtualenv is built aside and moved into
# place in one rename.
set -eu
: "${PYSTEPS_VERSION:?PYSTEPS_VERSION is not set}"
case "$PYSTEPS_VERSION" in
    *[!A-Za-z0-9.+-]*|'') echo "install-pysteps: bad version '$PYSTEPS_VERSION'" >&2; exit 2 ;;
esac
home="${PYSTEPS_HOME:-$HOME/.cache/pysteps/agent}"
venv="$home/venv-$PYSTEPS_VERSION"
spec="${PYSTEPS_PIP_SPEC:-pysteps==$PYSTEPS_VERSION}"
python3="${PYSTEPS_PYTHON3:-python3}"

if [ -f "$venv/.installed" ] && "$venv/bin/python" -c 'import pysteps' 2>/dev/null; then
    echo "$venv/bin/python"
    exit 0
fi
mkdir -p "$home"
# One install at a time on this agent (pip may build from a shared source tree): a second run
# waits on a lock of the cache directory itself, then finds the first one's virtualenv.
if command -v flock >/dev/null 2>&1; then
    exec 9<"$home"
    flock 9
    if [ -f "$venv/.installed" ] && "$venv/bin/python" -c 'import pysteps' 2>/dev/null; then
        echo "$venv/bin/python"
        exit 0
    fi
fi
tmp="$home/.venv-$PYSTEPS_VERSION.$$"
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "install-pysteps: installing $spec into $venv" >&2
"$python3" -m venv "$tmp" >&2
"$tmp/bin/python" -m pip install --quiet --disable-pip-version-check "$spec" >&2
# Another build may have finished first: keep its copy and drop ours.
if [ -f "$venv/.installed" ]; then
    echo "$venv/bin/python"
    exit 0
fi
rm -rf "$venv"
touch "$tmp/.installed"
mv "$tmp" "$venv"
trap - EXIT INT TERM
echo "$venv/bin/python"
