#!/usr/bin/env bash
# The headless browser the dashboard and digest tests drive: Debian's Chromium, its chromedriver, and CJK fonts
# so Korean renders in screenshots. Installed from the Debian archive when missing (needs root, as on our
# machines and CI); does nothing when all three are there.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing+=(fonts-noto-cjk)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ensure.sh: missing ${missing[*]}; run as root (or install them: apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "ensure.sh: installing ${missing[*]} from Debian ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" fontconfig >/dev/null
fc-cache -f >/dev/null 2>&1 || true
echo "ensure.sh: $(chromium --version 2>/dev/null || echo chromium), $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2)"
