"""Timing shared by the PyTorch comparators (bench_kernels_torch.py, bench_distill_torch.py)."""
import time


def time_calls(fn, warmup, repeats):
    """Calls fn `warmup` times untimed, then `repeats` times; returns each timed call's seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times
