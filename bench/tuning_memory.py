"""Does a long KerasTuner search leak memory? RSS of the search process after each of N tiny trials.

    python bench/tuning_memory.py                   # 30 trials in this process (≈ 1-2 min on 2 CPU cores)
    python bench/tuning_memory.py --isolate-trials  # every trial in a child process (slower per trial)
    python bench/tuning_memory.py --trials 10 --json bench/results/tuning_memory.json

The trials are LeNet-5 on 100 digits for 1 epoch (random search over λ, keep-prob and learning rate),
so the figure is what TensorFlow and KerasTuner keep per trial, not what a model needs. After every trial
``tuning`` calls ``keras.backend.clear_session()`` and ``gc.collect()``; the RSS is read from
``/proc/self/status`` (VmRSS) right after. The growth per trial is the least-squares slope over the
trials after the first five (the first ones warm up TensorFlow's caches).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def slope(ys: list[float]) -> float:
    n = len(ys)
    if n < 2:
        return float("nan")
    mean_x = (n - 1) / 2
    mean_y = sum(ys) / n
    num = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(ys))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--isolate-trials", action="store_true")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import tuning

    samples: list[tuple[int, float, float]] = []
    t0 = time.perf_counter()
    start_rss = rss_mb()

    def record(line: str) -> None:
        if not line.startswith("trial "):  # the search's header line
            print(line, flush=True)
            return
        samples.append((len(samples) + 1, rss_mb(), time.perf_counter() - t0))
        print(f"{line}  | RSS {samples[-1][1]:.0f} MB", flush=True)

    with tempfile.TemporaryDirectory() as directory:
        tuning.search("lenet5", "digits", tuner="random", max_trials=args.trials, epochs=1, limit=100,
                      test_limit=50, batch_size=32, directory=directory, overwrite=True, retrain=False,
                      isolate_trials=args.isolate_trials, progress=record,
                      max_consecutive_failed_trials=args.trials)
    rss = [s[1] for s in samples]
    warm = rss[5:] if len(rss) > 8 else rss
    figures = {
        "trials": len(samples), "isolate_trials": args.isolate_trials,
        "rss_before_search_mb": round(start_rss, 1),
        "rss_after_first_trial_mb": round(rss[0], 1), "rss_after_last_trial_mb": round(rss[-1], 1),
        "growth_per_trial_mb": round(slope(warm), 2),
        "growth_first_to_last_mb": round(rss[-1] - rss[0], 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "seconds_per_trial": round((samples[-1][2] - samples[0][2]) / max(1, len(samples) - 1), 2),
        "rss_mb": [round(r, 1) for r in rss],
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "rss_mb"}, indent=2))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
