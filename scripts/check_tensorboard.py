#!/usr/bin/env python3
"""Reads each run directory's TensorBoard event file with TensorBoard's own event reader and checks
every tag and value against the run's metrics.jsonl (as TensorBoardLog maps them).

    python check_tensorboard.py RUN_DIR...     (prints one line per run; exit 1 on a mismatch)
"""
import json
import math
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SKIPPED = {"epoch", "seconds", "meta_seconds"}


def expected(run):
    rows = [json.loads(line) for line in open(f"{run}/metrics.jsonl") if line.strip()]
    out = {}
    for row in rows:
        for key, value in row.items():
            if key in SKIPPED:
                continue
            if isinstance(value, list):
                for k, v in enumerate(value):
                    out.setdefault(f"{key}/teacher_{k}", []).append((row["epoch"], v))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out.setdefault(key, []).append((row["epoch"], value))
    return out


def main(runs):
    failed = False
    for run in runs:
        accumulator = EventAccumulator(run, size_guidance={"scalars": 0})
        accumulator.Reload()
        tags = set(accumulator.Tags()["scalars"])
        want = expected(run)
        problems = []
        if tags != set(want):
            problems.append(f"tags differ: only in the file {sorted(tags - set(want))}, only in metrics {sorted(set(want) - tags)}")
        for tag in sorted(tags & set(want)):
            got = [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for (step, value), (want_step, want_value) in zip(got, want[tag]):
                if step != want_step or not math.isclose(value, want_value, rel_tol=1e-6, abs_tol=1e-30):
                    problems.append(f"{tag}: step {step} value {value}, metrics say step {want_step} value {want_value}")
            if len(got) != len(want[tag]):
                problems.append(f"{tag}: {len(got)} events for {len(want[tag])} epochs")
        print(f"{run}: {len(tags)} tags, {sum(len(v) for v in want.values())} values: " + ("; ".join(problems) if problems else "all match"))
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
