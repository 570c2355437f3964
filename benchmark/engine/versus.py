"""Time this checkout against another commit's checkout, model by model, in alternating processes.

    python -m benchmark.engine.versus --base /path/to/old/checkout --models SASRec,TedRec \
        --out results/bench/cpu-versus-0e20f38.csv -- --dataset OR-sample --set hidden_size=64 --steps 2 --device cpu

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
    command = [
        sys.executable,
        "-m",
        "benchmark.cli",
        "bench",
        "--model",
        model,
        *bench_args,
        "--results-dir",
        str(results),
    ]
    done = subprocess.run(command, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise TedbenchError(f"bench of {model} in {checkout} failed: {done.stderr.strip().splitlines()[-1:]}")


def _rows(results: Path) -> list[dict[str, str]]:
    path = results / "cpu.csv"
    return list(csv.DictReader(open(path, newline=""))) if path.exists() else []


def merge(new_rows: list[dict[str, str]], base_rows: list[dict[str, str]]) -> list[dict]:
    """This checkout's rows (medians over its runs) with the base's step and eval times and the speed-ups,
    for every model timed on both sides."""
    out_rows = []
    for model in dict.fromkeys(r["model"] for r in new_rows):
        mine, theirs = ([r for r in rows if r["model"] == model] for rows in (new_rows, base_rows))
        if not theirs:
            continue
        row = {k: v for k, v in mine[0].items() if k != "ratio_to_first"}
        for column in ("step_seconds", "eval_seconds"):
            row[column] = round(statistics.median(float(r[column]) for r in mine), 4)
            base = round(statistics.median(float(r[column]) for r in theirs), 4)
            row[f"base_{column}"] = base
            row[f"{column.split('_')[0]}_speedup_vs_base"] = round(base / row[column], 2)
        row["sequences_per_second"] = round(int(row["batch_size"]) / row["step_seconds"], 1)
        out_rows.append(row)
    return out_rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="checkout of the commit compared against")
    parser.add_argument("--models", help="comma list of models")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", help="folder for the per-side CSVs (new/, base/); default: a temporary one")
    parser.add_argument("--merge-only", action="store_true", help="only merge the CSVs already in --keep")
    parser.add_argument("--out", required=True, help="CSV written with this checkout's rows and the ratios")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, help="-- then `tedbench bench` options")
    args = parser.parse_args(argv)
    if args.merge_only and not args.keep:
        raise TedbenchError("--merge-only needs --keep FOLDER")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        new_dir, base_dir = folder / "new", folder / "base"
        if not args.merge_only:
            if not (args.base and args.models):
                raise TedbenchError("--base and --models are needed unless --merge-only")
            _run(
                Path(args.base).resolve(),
                args.models,
                args.rounds,
                [a for a in args.bench_args if a != "--"],
                new_dir,
                base_dir,
            )
        out_rows = merge(_rows(new_dir), _rows(base_dir))
    if not out_rows:
        raise TedbenchError(f"{folder}: no model timed on both sides")
    with atomic_path(Path(args.out)) as tmp_out:
        with open(tmp_out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(out_rows[0]))
            writer.writeheader()
            writer.writerows(out_rows)
    for row in out_rows:
        print(
            f"{row['model']:18} base {row['base_step_seconds']:8.3f}s  new {row['step_seconds']:8.3f}s  "
            f"x{row['step_speedup_vs_base']:.2f}  eval x{row['eval_speedup_vs_base']:.2f}",
            file=sys.stderr,
        )
    speedups = [row["step_speedup_vs_base"] for row in out_rows]
    print(
        f"geometric mean step speedup x{statistics.geometric_mean(speedups):.2f} over {len(speedups)} models",
        file=sys.stderr,
    )


def _run(base: Path, models: str, rounds: int, bench_args: list[str], new_dir: Path, base_dir: Path) -> None:
    here = Path.cwd()
    names = [m.strip() for m in models.split(",") if m.strip()]
    for round_ in range(rounds):
        for model in names:
            pair = [(base, base_dir), (here, new_dir)]
            for checkout, results in pair if round_ % 2 == 0 else pair[::-1]:
                _bench(checkout, model, bench_args, results)
            print(f"round {round_} {model} done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
