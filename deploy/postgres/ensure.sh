#!/usr/bin/env bash
# PostgreSQL server binaries (initdb, pg_ctl, postgres) from Debian, installed when missing (needs root, as on our
# machines and CI). Prints the directory that holds them.
set -euo pipefail

find_bindir() {
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; fi
    done | sort -V | tail -n 1
}

bindir="$(find_bindir)"
if [ -z "$bindir" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "ensure.sh: no PostgreSQL server binaries; run as root (or: apt-get install postgresql)" >&2
        exit 1
    fi
    echo "ensure.sh: installing the PostgreSQL server from Debian ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir="$(find_bindir)"
fi
[ -n "$bindir" ] || { echo "ensure.sh: PostgreSQL server binaries still missing" >&2; exit 1; }
echo "$bindir"
