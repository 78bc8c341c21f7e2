#!/usr/bin/env bash
# Runs the interop suite: tests that use peers not on npm (kcat/librdkafka,
# the Java kafka-clients, Python confluent-kafka, Apache Kafka itself).
# install-peers.sh prints "SKIPPED: <peer>: <reason>" for a peer whose registry
# is unreachable; the tests for that peer then skip with the same reason.
# A peer that installed and then fails its test fails this script.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .tmp
bash scripts/interop/install-peers.sh | tee .tmp/interop-install.log || { echo "peer installation failed"; exit 1; }
npx vitest run --config vitest.interop.config.ts
