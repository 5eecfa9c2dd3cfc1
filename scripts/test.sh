#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, then runs the whole suite (Swift Testing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-dependencies.sh
swift build --build-tests
swift test --skip-build --disable-xctest
