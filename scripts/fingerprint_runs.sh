#!/usr/bin/env bash
# Fingerprints of tiny real runs, for checking that a refactor keeps every number bit-identical:
# trains two small teachers, trains a student alone and distils it with every method (Fashion-MNIST,
# 256 images, 2 epochs), then prints one line per run: the SHA-256 of the tensor bytes of
# last.safetensors and of metrics.jsonl without its timings. Run it with the binary before and after
# a change and diff the two outputs. MMKD_LAUNCH runs every command under a launcher, e.g.
# MMKD_LAUNCH="mpirun --oversubscribe --allow-run-as-root -np 2" for data-parallel runs.
#   scripts/fingerprint_runs.sh [MMKD_BINARY] [WORK_DIR]
set -euo pipefail
mmkd=${1:-.build/release/mmkd}
work=${2:-$(mktemp -d)}
mkdir -p "$work"
read -r -a launch <<< "${MMKD_LAUNCH:-}"
common=(--data fashion-mnist --epochs 2 --milestones 1 --batch-size 32 --train-limit 256 --runs-dir "$work" --loader-threads 1)
fingerprint() {  # run name
    python3 - "$work/$1" <<'PY'
import hashlib, json, struct, sys
run = sys.argv[1]
blob = open(f"{run}/last.safetensors", "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
header = json.loads(blob[8:8 + n])
header.pop("__metadata__", None)
tensors = hashlib.sha256(json.dumps(header, sort_keys=True).encode() + blob[8 + n:]).hexdigest()[:16]
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
for r in rows:
    for k in ("images_per_s", "seconds", "meta_seconds", "communication_seconds", "sent_bytes_per_step"):
        r.pop(k, None)
metrics = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]
print(f"{run.split('/')[-1]:16s} tensors {tensors}  metrics {metrics}  test top-1 {rows[-1]['test_top1']:.2f}")
PY
}
for seed in 1 2; do
    "${launch[@]}" "$mmkd" train --arch resnet8 --seed "$seed" --name "teacher$seed" "${common[@]}" >/dev/null 2>&1
    fingerprint "teacher$seed"
done
"${launch[@]}" "$mmkd" train --arch resnet8 --seed 3 --name alone "${common[@]}" >/dev/null 2>&1
fingerprint alone
two=(--teacher "resnet8=$work/teacher1/last.safetensors" --teacher "resnet8=$work/teacher2/last.safetensors")
one=(--teacher "resnet8=$work/teacher1/last.safetensors")
for method in kd fitnet at vid crd semckd srrl; do
    "${launch[@]}" "$mmkd" distill --student resnet8 "${one[@]}" --method "$method" --seed 3 --name "$method" "${common[@]}" >/dev/null 2>&1
    fingerprint "$method"
done
for method in aver fitnet-mkd ebkd aekd-logits aekd-feature camkd mmkd; do
    "${launch[@]}" "$mmkd" distill --student resnet8 "${two[@]}" --method "$method" --seed 3 --name "$method" --buffer-size 64 "${common[@]}" >/dev/null 2>&1
    fingerprint "$method"
done
"${launch[@]}" "$mmkd" distill --student resnet8 "${two[@]}" --method mmkd --seed 3 --name mmkd-official --compat official --buffer-size 64 --meta-freq 2 "${common[@]}" >/dev/null 2>&1
fingerprint mmkd-official
"${launch[@]}" "$mmkd" distill --student resnet8 "${two[@]}" --method mmkd --seed 3 --name mmkd-first-order --hypergradient first-order --regressor convs --no-buffer "${common[@]}" >/dev/null 2>&1
fingerprint mmkd-first-order
"${launch[@]}" "$mmkd" distill --student resnet8 "${two[@]}" --method aver --beta 10 --seed 3 --name aver-beta "${common[@]}" >/dev/null 2>&1
fingerprint aver-beta
# Wide networks (128 and 256 channels): their 3×3 convolutions run Winograd's kernels, in training,
# in teacher inference (F(4×4, 3×3)) and through MMKD's second-order meta step.
wide=(--data fashion-mnist --epochs 1 --batch-size 16 --train-limit 64 --runs-dir "$work" --loader-threads 1)
"${launch[@]}" "$mmkd" train --arch resnet8x4 --seed 1 --name wide-teacher "${wide[@]}" >/dev/null 2>&1
fingerprint wide-teacher
"${launch[@]}" "$mmkd" distill --student resnet8x4 --teacher "resnet8x4=$work/wide-teacher/last.safetensors" \
    --teacher "resnet8x4=$work/wide-teacher/last.safetensors" --method mmkd --buffer-size 16 --meta-freq 2 --seed 2 \
    --name wide-mmkd "${wide[@]}" >/dev/null 2>&1
fingerprint wide-mmkd
