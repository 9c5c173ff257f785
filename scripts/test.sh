#!/usr/bin/env bash
# The test suite: installs what the build needs, then runs every test target.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
swift test --skip-build "$@"
