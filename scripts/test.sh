#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, then runs the whole suite (Swift Testing), then a smoke run of
# the micro-benchmarks (their own package under Benchmarks/: a few iterations of each, to show that every one still
# builds and runs; its figures mean nothing). SKIP_BENCHMARKS=1 leaves the smoke run out (it builds the benchmark
# package in release mode: about 15 minutes the first time on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-dependencies.sh
swift build --build-tests
swift test --skip-build --disable-xctest
if [ -z "${SKIP_BENCHMARKS:-}" ]; then
    # Release mode: package-benchmark's runtime interposer, which Swift 6.3 on Linux needs, is built only there.
    (cd Benchmarks && CIRCUITO_BENCHMARK_SMOKE=1 swift package benchmark --no-progress)
fi
