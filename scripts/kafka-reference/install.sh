#!/usr/bin/env bash
# Resolve a reference Apache Kafka (broker + tools) from Maven Central and cache the
# jars under <repo>/.tmp/kafka-ref/libs. Idempotent: a second run is a no-op.
#
#   scripts/kafka-reference/install.sh            # default version (see pom.xml)
#   KAFKA_VERSION=4.3.1 scripts/kafka-reference/install.sh
#
# If Maven Central cannot be reached (and nothing is cached) it prints
# "SKIPPED: kafka: <reason>" and exits 0. Any other failure exits non-zero.
# On success the last line on stdout is the libs directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
REF_DIR="${KAFKA_REF_DIR:-$REPO/.tmp/kafka-ref}"
LIBS="$REF_DIR/libs"
DEFAULT_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml" | head -1)"
KAFKA_VERSION="${KAFKA_VERSION:-$DEFAULT_VERSION}"
STAMP="$LIBS/.installed-$KAFKA_VERSION"
MAVEN_CENTRAL="${MAVEN_CENTRAL_URL:-https://repo.maven.apache.org/maven2}"

log() { echo "[kafka-reference] $*" >&2; }

if [[ -f "$STAMP" && -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
  log "Apache Kafka $KAFKA_VERSION already installed in $LIBS"
  echo "$LIBS"
  exit 0
fi

if ! command -v java >/dev/null 2>&1; then
  echo "java not found on PATH (Kafka $KAFKA_VERSION needs Java 17+)" >&2
  exit 1
fi
if ! command -v mvn >/dev/null 2>&1; then
  echo "mvn not found on PATH (needed to resolve Kafka from Maven Central)" >&2
  exit 1
fi

MVN_OFFLINE=()
probe="$MAVEN_CENTRAL/org/apache/kafka/kafka_2.13/$KAFKA_VERSION/kafka_2.13-$KAFKA_VERSION.pom"
if ! curl -fsS -m 15 -o /dev/null "$probe" 2>/dev/null; then
  # Maybe the local ~/.m2 already has everything: try an offline resolve before giving up.
  if mvn -q -B -Dstyle.color=never -o -f "$HERE/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
       dependency:resolve -DincludeScope=runtime >/dev/null 2>&1; then
    log "Maven Central unreachable, resolving from the local Maven repository"
    MVN_OFFLINE=(-o)
  else
    echo "SKIPPED: kafka: Maven Central unreachable ($probe)"
    exit 0
  fi
fi

log "resolving Apache Kafka $KAFKA_VERSION (kafka_2.13, kafka-server, kafka-tools) into $LIBS"
tmp="$REF_DIR/libs.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
mvn -q -B -Dstyle.color=never "${MVN_OFFLINE[@]}" -f "$HERE/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >&2

if [[ ! -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" || ! -f "$tmp/kafka-tools-$KAFKA_VERSION.jar" ]]; then
  echo "dependency resolution finished but kafka jars are missing in $tmp" >&2
  exit 1
fi
echo "$KAFKA_VERSION" > "$tmp/.installed-$KAFKA_VERSION"
rm -rf "$LIBS"
mv "$tmp" "$LIBS"
trap - EXIT
log "installed $(ls "$LIBS" | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
echo "$LIBS"
