#!/bin/bash
# How well-posed MMKD's hypergradient is at float32 precision, on the fixture's setting
# (scripts/make_distillation_fixtures.py): for each seed set, the float64 truth against
#   - the same computation in float32 (PyTorch's own rounding), and
#   - float64 again after multiplying every learner parameter by (1 + 1e-6·N(0,1)),
# as the largest relative error ‖a − b‖/‖b‖ over the logit network's and over the feature network's
# parameters. Usage: scripts/hypergradient_conditioning.sh [SEEDS ...]   (SEEDS like 1,2,3,10)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gen() { FIXTURE_OUT="$work/$1" "${@:2}" /usr/bin/python3 scripts/make_distillation_fixtures.py >/dev/null; }
worst() {
    /usr/bin/python3 - "$work/$1" "$work/$2" "$3" <<'PY'
import json, math, sys
a, b = (json.load(open(d + "/distillation.json")) for d in sys.argv[1:3])
out = []
for form in ["1x1", "convs"]:
    for net in ["logit", "feature"]:
        errs = []
        for n, truth in a[form]["meta_gradients"].items():
            if not n.startswith(net): continue
            other = b[form]["meta_gradients"][n]
            errs.append(math.sqrt(sum((x - y) ** 2 for x, y in zip(truth, other))) / math.sqrt(sum(x * x for x in truth)))
        out.append(f"{form} {net} {max(errs):.1e}")
print(sys.argv[3] + ": " + ", ".join(out))
PY
}
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(1,2,3,10 11,12,13,20 21,22,23,30 31,32,33,40)
for seeds in "${sets[@]}"; do
    gen f64 env FIXTURE_SEEDS="$seeds"
    gen f32 env FIXTURE_SEEDS="$seeds" FIXTURE_DTYPE=float32
    gen p1 env FIXTURE_SEEDS="$seeds" FIXTURE_PERTURB=1e-6:1
    echo "seeds $seeds"
    worst f64 f32 "  float32 vs float64      "
    worst f64 p1 "  float64, params ×(1+1e-6ε)"
done
