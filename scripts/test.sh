#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, then runs the whole suite (Swift Testing), then a smoke run of
# the micro-benchmarks (their own package under Benchmarks/: a few iterations of each, to show that every one still
# builds and runs; its figures mean nothing). SKIP_BENCHMARKS=1 leaves the smoke run out (it builds the benchmark
# package in release mode: 3 minutes the first time on 2 cores, run included).
set -euo pipefail
cd "$(dirname "$0")/.."
# python3: the tests of Benchmarks/ run its summary script (summarise-scenarios.py).
bash scripts/ensure-dependencies.sh python3
swift build --build-tests
# Bounded: a test that waits for an answer that never comes (a writer regression hangs rather than fails) fails
# the run after 15 minutes (TEST_TIMEOUT_SECONDS) instead of holding it until CI's limit. The suite itself takes under
# a minute. Each test of the server and CLI suites has a time limit of 5 minutes, past which Swift Testing records a
# failure that names it (a CLI test: 5 minutes of its own, less its commands' waits for a slot, or 10 in all); a wait
# that never ends still holds the process until this bound. Line-buffered (`stdbuf`), so that what the tests printed
# before such a kill is in the log: written to a pipe or a file, it would be lost with the process.
status=0
timeout_seconds="${TEST_TIMEOUT_SECONDS:-900}"
timeout --kill-after=30 "$timeout_seconds" stdbuf -oL -eL swift test --skip-build --disable-xctest || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "the test suite did not finish within $timeout_seconds seconds: a test is waiting for something that never comes" >&2
    # `swift test` runs the tests in a process group of their own, which the timeout's signals do not reach: end that
    # process here (only this checkout's), or it would outlive the run, holding the log's pipe open.
    pkill -KILL -f "^$PWD/\.build/[^ ]*/CircuitoPackageTests\.xctest" || true
fi
if [ "$status" -ne 0 ]; then exit "$status"; fi
if [ -z "${SKIP_BENCHMARKS:-}" ]; then
    # Release mode: package-benchmark's runtime interposer, which Swift 6.3 on Linux needs, is built only there.
    (cd Benchmarks && CIRCUITO_BENCHMARK_SMOKE=1 swift package benchmark --no-progress)
fi
