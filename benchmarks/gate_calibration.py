"""Calibration of the regression gate, by simulation: false-alarm rate and power.

Rewards are Beta-distributed with mean 0.75 and sd about 0.13 (the shape of judge scores in [0, 1]);
the candidate's mean is 0.75 (identical distributions: every failure is a false alarm), 0.70 or 0.65
(a real drop of 0.05 or 0.10; the failure rate is the power). Baseline and candidate windows have n
sessions each; one-sided alpha = 0.05. Every figure is the share of ``trials`` simulated gates whose
outcome is ``fail``; a fixed seed makes the table reproducible.

A second table checks the rule for windows without spread (every score the same), on the least
favourable case: scores are ``v`` with probability ``threshold / v`` and 0 otherwise, so the true
mean is exactly the threshold and every ``pass`` of a threshold gate is a false one. A window of
``n`` scores all at ``v`` turns up with chance ``(threshold / v) ** n``; the t bound of such a
window has zero width, so a rule that trusts it passes that often. The false passes on windows
without spread must stay at most alpha; the last column counts every false pass, including windows
with a few zeros judged by Student t (whose bound assumes a roughly normal mean, which a few
dozen draws of this two-point distribution do not have).

    python benchmarks/gate_calibration.py              # 2000 trials (bootstrap: 400), about a minute
    python benchmarks/gate_calibration.py --trials 500 --sizes 20 50 200
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from pytest_atlas.stats import check_threshold, compare, compare_paired

MEAN, SD = 0.75, 0.13


def beta_params(mean: float, sd: float) -> tuple[float, float]:
    concentration = mean * (1 - mean) / sd**2 - 1
    return mean * concentration, (1 - mean) * concentration


def fail_rate(
    method: str, n: int, drop: float, trials: int, rng: np.random.Generator, *, paired: bool = False
) -> float:
    a_b, b_b = beta_params(MEAN, SD)
    a_c, b_c = beta_params(MEAN - drop, SD)
    fails = 0
    for trial in range(trials):
        if paired:
            # the same tasks in both runs: a task effect shared by both, plus per-run noise
            task = rng.normal(0.0, SD * math.sqrt(0.7), n)
            base = np.clip(MEAN + task + rng.normal(0, SD * math.sqrt(0.3), n), 0, 1)
            cand = np.clip(MEAN - drop + task + rng.normal(0, SD * math.sqrt(0.3), n), 0, 1)
            result = compare_paired(
                base.tolist(), cand.tolist(), method=method, min_effect=None, n_resamples=1000, seed=trial
            )
        else:
            base = rng.beta(a_b, b_b, n)
            cand = rng.beta(a_c, b_c, n)
            result = compare(base.tolist(), cand.tolist(), method=method, min_effect=None, n_resamples=1000, seed=trial)
        fails += result.outcome.value == "fail"
    return fails / trials


def false_pass_rates(
    value: float, threshold: float, n: int, trials: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Shares of threshold checks that pass when the true mean is exactly ``threshold``: on windows
    without spread, and on all windows."""
    flat = passes = 0
    for _ in range(trials):
        scores = np.where(rng.random(n) < threshold / value, value, 0.0)
        passed = check_threshold(scores.tolist(), threshold).outcome.value == "pass"
        passes += passed
        flat += passed and bool((scores == value).all())
    return flat / trials, passes / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--bootstrap-trials", type=int, default=400)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 200])
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()

    print(
        f"Beta rewards, mean {MEAN}, sd {SD}; one-sided alpha 0.05; fail rate over "
        f"{args.trials} trials ({args.bootstrap_trials} for bootstrap); seed {args.seed}"
    )
    print()
    print("| n | method | false alarm (no drop) | power, drop 0.05 | power, drop 0.10 |")
    print("|---|---|---|---|---|")
    started = time.perf_counter()
    for n in args.sizes:
        for method, paired in (("welch", False), ("mann-whitney", False), ("bootstrap", False), ("welch", True)):
            rng = np.random.default_rng([args.seed, n])
            trials = args.bootstrap_trials if method == "bootstrap" else args.trials
            rates = [fail_rate(method, n, drop, trials, rng, paired=paired) for drop in (0.0, 0.05, 0.10)]
            label = f"{method} (paired)" if paired else method
            print(f"| {n} | {label} | {rates[0]:.3f} | {rates[1]:.2f} | {rates[2]:.2f} |", flush=True)
    print()
    print("Windows without spread: least favourable scores (v or 0, true mean = threshold), alpha 0.05")
    print()
    print(
        "| n | v | threshold | chance all n at v (a zero-width bound passes them) | false pass, no spread | false pass, all |"
    )
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng([args.seed, 0])
    for n, value, threshold in ((2, 0.9, 0.8), (10, 0.9, 0.8), (30, 0.9, 0.8), (50, 1.0, 0.95)):
        flat, every = false_pass_rates(value, threshold, n, args.trials, rng)
        chance = (threshold / value) ** n
        print(f"| {n} | {value} | {threshold} | {chance:.3f} | {flat:.3f} | {every:.3f} |", flush=True)
    print()
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
