"""Time this checkout against another commit's checkout, model by model, in alternating processes.

    python -m benchmark.engine.versus --base /path/to/old/checkout --out results/bench/cpu.csv -- \
        --model all --dataset OR-sample --set hidden_size=64 --steps 3 --device cpu

For each round and each model, `tedbench bench` runs once in the base checkout and once in this one,
back to back (old first on even rounds, new first on odd ones), so load on a shared machine falls on both.
The rows of this checkout are written to `--out` with the base's step time and the ratio beside them.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmark.errors import TedbenchError
from benchmark.fsutil import atomic_path


def _bench(checkout: Path, model: str, bench_args: list[str], results: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    command = [sys.executable, "-m", "benchmark.cli", "bench", "--model", model, *bench_args, "--results-dir", str(results)]
    done = subprocess.run(command, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise TedbenchError(f"bench of {model} in {checkout} failed: {done.stderr.strip().splitlines()[-1:]}")


def _rows(results: Path) -> list[dict[str, str]]:
    path = results / "cpu.csv"
    return list(csv.DictReader(open(path, newline=""))) if path.exists() else []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="checkout of the commit compared against")
    parser.add_argument("--models", required=True, help="comma list of models")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", required=True, help="CSV written with this checkout's rows and the ratios")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, help="-- then `tedbench bench` options")
    args = parser.parse_args(argv)
    bench_args = [a for a in args.bench_args if a != "--"]
    here, base = Path.cwd(), Path(args.base).resolve()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        new_dir, base_dir = Path(tmp) / "new", Path(tmp) / "base"
        for round_ in range(args.rounds):
            for model in models:
                pair = [(base, base_dir), (here, new_dir)]
                for checkout, results in pair if round_ % 2 == 0 else pair[::-1]:
                    _bench(checkout, model, bench_args, results)
                print(f"round {round_} {model} done", file=sys.stderr, flush=True)
        new_rows, base_rows = _rows(new_dir), _rows(base_dir)
    base_step = {m: statistics.median(float(r["step_seconds"]) for r in base_rows if r["model"] == m) for m in models}
    base_eval = {m: statistics.median(float(r["eval_seconds"]) for r in base_rows if r["model"] == m) for m in models}
    out_rows = []
    for model in models:
        mine = [r for r in new_rows if r["model"] == model]
        row = dict(mine[0])
        row["step_seconds"] = round(statistics.median(float(r["step_seconds"]) for r in mine), 4)
        row["eval_seconds"] = round(statistics.median(float(r["eval_seconds"]) for r in mine), 4)
        row["sequences_per_second"] = round(int(row["batch_size"]) / row["step_seconds"], 1)
        row["base_step_seconds"] = base_step[model]
        row["step_speedup_vs_base"] = round(base_step[model] / row["step_seconds"], 2)
        row["base_eval_seconds"] = base_eval[model]
        row["eval_speedup_vs_base"] = round(base_eval[model] / row["eval_seconds"], 2)
        row.pop("ratio_to_first", None)
        out_rows.append(row)
    speedups = [r["step_speedup_vs_base"] for r in out_rows]
    geomean = statistics.geometric_mean(speedups)
    with atomic_path(Path(args.out)) as tmp_out:
        with open(tmp_out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(out_rows[0]))
            writer.writeheader()
            writer.writerows(out_rows)
    for row in out_rows:
        print(f"{row['model']:18} base {row['base_step_seconds']:8.3f}s  new {row['step_seconds']:8.3f}s  "
              f"x{row['step_speedup_vs_base']:.2f}  eval x{row['eval_speedup_vs_base']:.2f}", file=sys.stderr)
    print(f"geometric mean step speedup x{geomean:.2f} over {len(speedups)} models", file=sys.stderr)


if __name__ == "__main__":
    main()
