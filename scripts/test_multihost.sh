#!/usr/bin/env bash
# Two "hosts" on one machine: two network namespaces joined by a veth pair (10.77.0.1 and
# 10.77.0.2), Open MPI over TCP between them, its remote launcher replaced by `ip netns exec`
# (scripts/netns_rsh.sh) instead of ssh. Trains resnet8 for two epochs on TinyCIFAR-like data on one
# process in each namespace, and once on one process alone, and checks that the two-host run
# finished, said so, and agrees with the single process to 1e-4 per step.
# Needs root (network namespaces) and Open MPI; prints "multihost: skipped (…)" and exits 0 when it
# cannot create namespaces, so that CI machines without the capability still pass.
#   scripts/test_multihost.sh [MMKD_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
mmkd=$(realpath "${1:-.build/release/mmkd}")
a=mmkd-host-a b=mmkd-host-b
cleanup() { ip netns delete "$a" 2>/dev/null || true; ip netns delete "$b" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
if ! ip netns add "$a" 2>/dev/null || ! ip netns add "$b" 2>/dev/null; then
    echo "multihost: skipped (cannot create network namespaces here: needs root and CAP_SYS_ADMIN)"; exit 0
fi
ip link add mmkd-veth-a netns "$a" type veth peer name mmkd-veth-b netns "$b"
ip -n "$a" addr add 10.77.0.1/24 dev mmkd-veth-a; ip -n "$b" addr add 10.77.0.2/24 dev mmkd-veth-b
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set mmkd-veth-a up; ip -n "$b" link set mmkd-veth-b up
work=$(mktemp -d)
python3 - "$work/data" <<'PY'
import os, random, sys
root = os.path.join(sys.argv[1], "cifar-10-batches-bin"); os.makedirs(root)
g = random.Random(5)
def batch(n):
    out = bytearray()
    for _ in range(n):
        label = g.randrange(10); out.append(label)
        out += bytes(min(255, label * 20 + g.randrange(40)) for _ in range(3072))
    return bytes(out)
for i in range(1, 6): open(os.path.join(root, f"data_batch_{i}.bin"), "wb").write(batch(16))
open(os.path.join(root, "test_batch.bin"), "wb").write(batch(16))
PY
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$work/hosts"
recipe=(train --arch resnet8 --data "cifar10:$work/data" --epochs 2 --batch-size 16 --lr 1e-4 --milestones 5 --loader-threads 1 --runs-dir "$work/runs")
MMKD_THREADS=1 "$mmkd" "${recipe[@]}" --name one > "$work/one.log" 2>&1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 MMKD_THREADS=1
ip netns exec "$a" mpirun --hostfile "$work/hosts" -np 2 --map-by node --display-map \
    --mca plm_rsh_agent "$PWD/scripts/netns_rsh.sh" --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
    --mca oob_tcp_if_include 10.77.0.0/24 -x MMKD_THREADS -x PATH \
    "$mmkd" "${recipe[@]}" --name two > "$work/two.log" 2>&1 || { cat "$work/two.log"; exit 1; }
grep -q "on 2 processes" "$work/two.log" || { cat "$work/two.log"; echo "multihost: FAILED (not on 2 processes)"; exit 1; }
# One rank on each "host" (Open MPI's map of the job: mpirun's own namespace shows as this machine's name).
grep -qE "Data for node: 10\.77\.0\.2[[:space:]].*Num procs: 1" "$work/two.log" \
    || { cat "$work/two.log"; echo "multihost: FAILED (no rank on 10.77.0.2)"; exit 1; }
python3 - "$work/runs" <<'PY'
import json, sys
load = lambda n: [json.loads(l)["loss"] for l in open(f"{sys.argv[1]}/{n}/steps.jsonl")]
one, two = load("one"), load("two")
worst = max(abs(a - b) / abs(a) for a, b in zip(one, two))
assert len(one) == len(two) == 10, (len(one), len(two))
assert worst <= 1e-4, worst
print(f"multihost: ok (two namespaces over TCP, {len(two)} steps, per-step losses within {worst:.1e} of one process)")
PY
rm -rf "$work"
