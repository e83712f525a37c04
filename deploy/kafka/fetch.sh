#!/usr/bin/env bash
# Copy the Apache Kafka broker jars named by pom.xml from Maven Central into deploy/kafka/lib/.
# Idempotent and safe to run concurrently: a stamp holding pom.xml's hash says lib/ is complete,
# jars are fetched into a temporary folder and renamed into place, and a lock serialises runs.
# Maven caches downloads in ~/.m2, so after the first run this needs no network.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="$HERE/lib"
STAMP="$LIB/.pom.sha256"

command -v mvn >/dev/null || { echo "fetch.sh: Maven (mvn) is not installed; install it (Debian: apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null || { echo "fetch.sh: Java 17+ is not installed (Debian: apt-get install openjdk-17-jre-headless)" >&2; exit 1; }

want="$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)"
mkdir -p "$HERE/run"  # git-ignored: the lock and the half-fetched folder live here
exec 9>"$HERE/run/.fetch.lock"
flock 9

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0  # lib/ already holds exactly what pom.xml asks for
fi

tmp="$(mktemp -d "$HERE/run/.lib.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetch.sh: copying Kafka broker jars (pom.xml) into $LIB ..." >&2
if ! mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime >"$tmp.mvn.log" 2>&1; then
    echo "fetch.sh: mvn failed; its output:" >&2
    cat "$tmp.mvn.log" >&2
    rm -f "$tmp.mvn.log"
    exit 1
fi
rm -f "$tmp.mvn.log"
ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { echo "fetch.sh: no kafka_2.13 jar was copied into $tmp" >&2; exit 1; }
echo "$want" >"$tmp/.pom.sha256"
# Swap the whole folder so an old version's jars never mix with the new ones on the class path.
rm -rf "$LIB"
mv "$tmp" "$LIB"
trap - EXIT
echo "fetch.sh: $(ls "$LIB"/*.jar | wc -l) jars in $LIB" >&2
