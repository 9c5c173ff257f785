#!/usr/bin/env bash
# The test suite: installs what the build needs, then runs every test target (XCTest, release build:
# the model-zoo fixtures run whole networks) and ends with
# a one-line summary "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --build-tests
# TensorBoard's own event reader (PyPI, in a virtual environment) for the event-file test.
venv=.build/tensorboard-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import tensorboard" >/dev/null 2>&1; then
    rm -rf "$venv"
    (python3 -m venv "$venv" && "$venv/bin/pip" install -q tensorboard) >/dev/null 2>&1 \
        || echo "test.sh: could not install tensorboard from PyPI; its event-file check will be skipped"
fi
if "$venv/bin/python" -c "import tensorboard" >/dev/null 2>&1; then export MMKD_TENSORBOARD_PYTHON="$PWD/$venv/bin/python"; fi
# The ONNX project's checker and onnxruntime (PyPI) for the export tests.
onnxvenv=.build/onnx-venv
check_onnx='import onnx, onnxruntime, numpy, PIL'
if [ ! -x "$onnxvenv/bin/python" ] || ! "$onnxvenv/bin/python" -c "$check_onnx" >/dev/null 2>&1; then
    rm -rf "$onnxvenv"
    (python3 -m venv "$onnxvenv" && "$onnxvenv/bin/pip" install -q onnx onnxruntime numpy pillow) >/dev/null 2>&1 \
        || echo "test.sh: could not install onnx and onnxruntime from PyPI; the onnxruntime checks of the export will be skipped"
fi
if "$onnxvenv/bin/python" -c "$check_onnx" >/dev/null 2>&1; then export MMKD_ONNX_PYTHON="$PWD/$onnxvenv/bin/python"; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
swift test -c release --skip-build --disable-swift-testing "$@" 2>&1 | tee "$log" || status=$?
# The run-time-dispatched kernels once more with their portable build forced.
portable=$(mktemp)
trap 'rm -f "$log" "$portable"' EXIT
echo "test.sh: the engine's kernel tests again with MMKD_PORTABLE_KERNELS=1"
MMKD_PORTABLE_KERNELS=1 swift test -c release --skip-build --disable-swift-testing \
    --filter "KernelDispatchTests|KernelOracleTests|BlockedLayoutTests|GradientCheckTests|SecondOrderTests|WinogradTests|ConcurrentOpsTests" 2>&1 | tee "$portable" || status=$?
# Two "hosts" (network namespaces joined by a veth pair), Open MPI over TCP between them (skips
# itself, saying why, where namespaces cannot be made).
echo "test.sh: data-parallel training across two network namespaces"
scripts/test_multihost.sh .build/release/mmkd || status=$?
executed=0; skipped=0; failed=0
for f in "$log" "$portable"; do
    # XCTest's last summary line: "Executed N tests, with [K tests skipped and ]M failures …".
    summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with ([0-9]+ tests? skipped and )?[0-9]+ failures?" "$f" | tail -n 1 || true)
    [ -n "$summary" ] || continue
    executed=$((executed + $(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')))
    if echo "$summary" | grep -qE "[0-9]+ tests? skipped"; then
        skipped=$((skipped + $(echo "$summary" | sed -E 's/.*with ([0-9]+) tests? skipped.*/\1/')))
    fi
    failed=$((failed + $(echo "$summary" | sed -E 's/.* ([0-9]+) failures?.*/\1/')))
done
echo "$((executed - skipped - failed)) passed, $skipped skipped, $failed failed"
exit "$status"
