# shellcheck shell=bash
# Headless Chromium (Debian `chromium`): renders the deploy mail's HTML to PNG in a test, so a
# person can check the layout. Nothing runs in the background; "up" means "installed".
tb_register chromium

chromium_install() { tb_apt chromium; }

chromium_check() { command -v chromium >/dev/null && chromium --headless --version >/dev/null 2>&1; }

chromium_endpoint() { command -v chromium || echo "chromium (not installed)"; }

chromium_start() { chromium_check; }

chromium_stop() { :; }

chromium_env() { echo "export TESTBED_CHROMIUM=$(command -v chromium || echo chromium)"; }
