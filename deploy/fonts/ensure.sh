#!/usr/bin/env bash
# The CJK font the digest's trend chart draws its Korean labels with (notifiers/chart.py): Debian's
# fonts-noto-cjk, installed when missing. Without root it only says so: the daemon still runs, and digests
# carry the trend as text until the font is there.
set -euo pipefail

if fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "fonts/ensure.sh: Noto Sans CJK is missing; as root: apt-get install fonts-noto-cjk (the digest chart needs it)" >&2
    exit 0
fi
echo "fonts/ensure.sh: installing fonts-noto-cjk from Debian ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends fonts-noto-cjk fontconfig >/dev/null
fc-cache -f >/dev/null 2>&1 || true
