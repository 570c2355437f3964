"""`tedbench`: one command line with subcommands."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmark import __version__, argtypes, layout
from benchmark.engine.allocator import keep_freed_memory
from benchmark.engine.cpu_matmul import use_onednn_float32
from benchmark.errors import TedbenchError
from benchmark.log import logger
from benchmark.log import setup as setup_logging


def _data_root(args: argparse.Namespace) -> Path:
    return layout.data_root(args.data_root)


def _mirror(args: argparse.Namespace) -> Path | None:
    from benchmark.data.fetch import default_mirror

    return Path(args.mirror) if args.mirror else default_mirror()


def _raw_root(args: argparse.Namespace) -> Path:
    return layout.raw_root(args.raw_root)


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True))


def cmd_prepare(args: argparse.Namespace) -> None:
    from benchmark.data.prepare import prepare

    counts = prepare(
        args.dataset,
        data_root=_data_root(args),
        mirror=_mirror(args),
        raw_root=_raw_root(args),
        form=args.form,
        k=args.k_core,
        tie_order=args.tie_order,
        tie_seed=args.tie_seed,
        download=not args.offline,
        allow_unpinned=args.allow_unpinned,
        force=args.force,
    )
    _print_json(counts) if args.json else print(
        f"{args.dataset}: {counts['users']:,} users, {counts['items']:,} items, {counts['interactions']:,} "
        f"interactions, sparsity {counts['sparsity']:.4f}%"
    )


def cmd_fetch(args: argparse.Namespace) -> None:
    from benchmark.data.fetch import fetch
    from benchmark.data.sources import get_source

    paths = fetch(
        get_source(args.dataset),
        _mirror(args),
        _raw_root(args) / args.dataset,
        form=args.form,
        download=not args.offline,
        allow_unpinned=args.allow_unpinned,
    )
    for path in paths:
        print(path)


def cmd_sample(args: argparse.Namespace) -> None:
    from benchmark.data.sample import build_sample

    _print_json(
        build_sample(
            args.dataset,
            invoices=args.invoices,
            items=args.items,
            seed=args.seed,
            out=Path(args.out),
            mirror=_mirror(args),
            raw_root=_raw_root(args),
        )
    )


def cmd_import(args: argparse.Namespace) -> None:
    from benchmark.data.prepare import import_recbole
    from benchmark.data.readers import Columns, field_list

    counts = import_recbole(
        args.name,
        data_root=_data_root(args),
        atomic=Path(args.atomic) if args.atomic else None,
        item_file=Path(args.item) if args.item else None,
        benchmark_dir=Path(args.benchmark) if args.benchmark else None,
        text_fields=field_list(args.text_fields) if args.text_fields is not None else None,
        columns=Columns.parse(args.field_map) if args.field_map is not None else None,
        tie_order=args.tie_order,
        tie_seed=args.tie_seed,
        force=args.force,
    )
    _print_json(counts)


def cmd_export(args: argparse.Namespace) -> None:
    from benchmark.data.export import export_recbole

    _print_json(export_recbole(args.dataset, data_root=_data_root(args), out=Path(args.out), force=args.force))


def cmd_stats(args: argparse.Namespace) -> None:
    from benchmark.data.prepare import prepare
    from benchmark.data.store import load_manifest

    folder = layout.processed_dir(_data_root(args), args.dataset)
    if not (folder / "manifest.json").exists():
        prepare(
            args.dataset, data_root=_data_root(args), mirror=_mirror(args), raw_root=_raw_root(args), download=False
        )
    manifest = load_manifest(folder)
    stats = {
        "dataset": args.dataset,
        **manifest["counts"],
        "partial": manifest.get("partial", False),
        "text_coverage": manifest.get("text_coverage"),
    }
    if args.json:
        _print_json(stats)
        return
    print(
        f"{args.dataset}: {stats['users']:,} users, {stats['items']:,} items, {stats['interactions']:,} "
        f"interactions, sparsity {stats['sparsity']:.4f}%" + (" (partial)" if stats["partial"] else "")
    )


def cmd_embed(args: argparse.Namespace) -> None:
    from benchmark.data.store import load_sequences
    from benchmark.text.embed import check_options, embed_texts

    check_options(args.encoder, args.batch_size)
    seqs = load_sequences(layout.processed_dir(_data_root(args), args.dataset))
    result = embed_texts(
        seqs.item_text,
        args.encoder,
        cache_dir=layout.embeddings_dir(_data_root(args), args.dataset),
        device=args.device,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    _print_json(
        {
            "dataset": args.dataset,
            "encoder": args.encoder,
            "shape": list(result.matrix.shape),
            "path": str(result.path),
            "key": result.key,
            "cache_hit": result.cache_hit,
        }
    )


def cmd_models(args: argparse.Namespace) -> None:
    from benchmark.registry import get_model, list_families, list_models

    names = list_models(args.pattern)
    if not names and any(args.pattern.lower().startswith(f.prefix.lower()) for f in list_families()):
        names = [get_model(args.pattern).name]  # one model of a family, e.g. recbole:GRU4Rec
    rows = []
    for name in names:
        entry = get_model(name)
        presets = {
            p: {k: {"value": v, "source": src} for k, (v, src) in cited.items()}
            for p, cited in entry.cited_presets().items()
        }
        rows.append(
            {
                "name": name,
                "needs_text": entry.needs_text,
                "defaults": entry.defaults,
                "presets": presets,
                "search_space": sorted(entry.search_space),
                "description": entry.description,
            }
        )
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(f"{row['name']:<12} {'text' if row['needs_text'] else 'id':<5} {row['description']}")
        for family in list_families(args.pattern):
            print(f"{family.pattern:<12} {'id':<5} {family.description}")


def _sources(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """Explicit model options by source, lowest precedence first: --params file, then --set, then --lr."""
    from benchmark.runconfig import options_file

    sources = []
    if getattr(args, "params", None):
        path = Path(args.params)
        sources.append((f"--params {path}", options_file(path, f"--params {path}")))
    if getattr(args, "set", None):
        sources.append(("--set", dict(args.set)))
    if getattr(args, "lr", None) is not None:
        sources.append(("--lr", {"learning_rate": args.lr}))
    return sources


def _profile(args: argparse.Namespace):
    from benchmark.profiles import load_profile

    return load_profile(args.profile, Path(args.params_file)) if getattr(args, "profile", None) else None


def _budget(args: argparse.Namespace):
    """The training budget: the profile's, then the explicit flags."""
    from benchmark.runconfig import train_budget

    return train_budget(
        _profile(args),
        seed=args.seed,
        amp=args.amp,
        tf32=args.tf32 or None,
        compile=args.compile or None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_steps_per_epoch=getattr(args, "max_steps", None),
    )


def _resolved(args: argparse.Namespace, model: str):
    """`model`'s run settings from the profile and the explicit options and flags (runconfig's one path)."""
    from benchmark.runconfig import resolve

    return resolve(model, profile=_profile(args), sources=_sources(args), budget=_budget(args))


def cmd_train(args: argparse.Namespace) -> None:
    from benchmark.engine.run import train

    out = Path(args.out or layout.train_scratch(args.dataset, args.model, args.seed))
    run = _resolved(args, args.model)
    metrics = train(
        args.model,
        args.dataset,
        data_root=_data_root(args),
        out=out,
        encoder=args.encoder,
        device=args.device,
        overrides=run.overrides,
        train_config=run.train_config,
        resume=args.resume,
        overwrite=args.overwrite,
        tag=args.tag,
        profile=args.profile,
    )
    _print_json({"out": str(out), **metrics})


def cmd_verify(args: argparse.Namespace) -> None:
    import shlex

    from benchmark.fidelity.verify import verify

    if args.amp != "none" or args.tf32 or args.compile:
        raise TedbenchError(
            "verify trains both sides in float32: --amp, --tf32 and --compile would apply to tedbench only"
        )
    if sum(map(bool, (args.transplant, args.lockstep, args.speed))) > 1:
        raise TedbenchError("--transplant, --lockstep and --speed are different checks: give one of them")
    seeds = [args.seed + i for i in range(args.seeds)]
    work = Path(args.work or layout.verify_scratch(args.dataset, args.model, args.profile, args.against))
    run = _resolved(args, args.model)
    result = verify(
        args.model,
        args.dataset,
        data_root=_data_root(args),
        overrides=run.overrides,
        train_config=run.train_config,
        seeds=seeds,
        profile=args.profile,
        device=args.device or "cpu",
        out=Path(args.out),
        work=work,
        command="tedbench " + shlex.join(args.argv),
        against=args.against,
        reference_code=Path(args.reference_code) if args.reference_code else None,
        transplant=args.transplant,
        lockstep_steps=args.lockstep,
        speed_steps=args.speed,
        encoder=args.encoder,
    )
    _print_json(result)


def cmd_compare_runs(args: argparse.Namespace) -> None:
    import shlex

    from benchmark.fidelity.compare import compare_runs

    command = "tedbench " + shlex.join(args.argv)
    _print_json(
        compare_runs(Path(args.runs), Path(args.against), tuple(args.labels), Path(args.out), args.stem, command)
    )


def _grid(items: list[tuple[str, tuple[Any, ...]]] | None) -> dict[str, tuple[Any, ...]]:
    """--grid dimensions (checked by `argtypes.grid_dimension`); a later one for a parameter wins."""
    return dict(items or [])


def cmd_tune(args: argparse.Namespace) -> None:
    from benchmark.profiles import load_tuning
    from benchmark.tune import TuneSpec, default_storage, tune

    results = Path(args.results_dir)
    run = _resolved(args, args.model)  # checked before any folder is made
    protocol = load_tuning(args.protocol, Path(args.params_file)) if args.protocol else None
    spec = TuneSpec(
        model=args.model,
        dataset=args.dataset,
        storage=args.storage or default_storage(results, args.dataset, args.model),
        encoder=args.encoder,
        sampler=protocol.sampler if protocol else args.sampler,
        n_trials=args.n_trials or (protocol.n_trials if protocol else None),
        grid=_grid(args.grid),
        dimensions=protocol.dimensions(args.model, Path(args.params_file)) if protocol else None,
        seed=protocol.seed if protocol else args.seed,
        timeout=args.timeout,
        device=args.device,
        data_root=_data_root(args),
        runs_root=Path(args.runs_dir),
        results_root=results,
        train_config=run.train_config,
        overrides=run.overrides,
        grace_period=args.grace_period,
        profile=args.profile,
    )
    _print_json(tune(spec))


def cmd_bench(args: argparse.Namespace) -> None:
    from tabulate import tabulate

    from benchmark.engine.bench import bench
    from benchmark.registry import list_models
    from benchmark.runconfig import resolve

    names = (
        sorted(list_models(), key=lambda name: name != "SASRec")
        if args.model == "all"
        else [name.strip() for name in args.model.split(",") if name.strip()]
    )
    profile, sources = _profile(args), _sources(args)
    runs = [resolve(name, profile=profile, sources=sources, budget=_budget(args)) for name in names]
    explicit = {key: value for _, options in sources for key, value in options.items()}
    setting = (f"profile {profile.name}" if profile else "the models' own sizes") + f", options {explicit}"
    rows = bench(
        runs,
        args.dataset,
        data_root=_data_root(args),
        encoder=args.encoder,
        device=args.device,
        steps=args.steps,
        rounds=args.rounds,
        results_dir=Path(args.results_dir),
        profile_ops=Path(args.profile_ops) if args.profile_ops else None,
        setting=setting,
    )
    columns = [
        "model",
        "step_seconds",
        "epoch_seconds",
        "ratio_to_first",
        "eval_seconds",
        "authors_a100_epoch_seconds",
        "speedup_vs_authors",
    ]
    print(tabulate([[row[c] for c in columns] for row in rows], headers=columns, tablefmt="github"), file=sys.stderr)
    print(
        f"device {rows[0]['device']}; appended to {Path(args.results_dir) / (rows[0]['device'] + '.csv')}",
        file=sys.stderr,
    )
    _print_json(rows[0] if len(rows) == 1 else rows)


def cmd_report(args: argparse.Namespace) -> None:
    from benchmark.report.build import build_report

    summary = build_report(
        Path(args.runs),
        Path(args.out),
        tag=args.tag,
        encoder=args.encoder,
        allow_mixed=args.allow_mixed,
        html=args.html,
        skip_running=args.skip_running,
    )
    for folder in summary["running"]:
        logger.info("left out (still running): %s", folder)
    table = layout.table_path(Path(args.out), "table3")
    if table.exists():
        print(table.read_text(), file=sys.stderr)  # for the reader; stdout is the JSON summary alone
    _print_json({k: v for k, v in summary.items() if k != "files"} | {"written": len(summary["files"])})


def cmd_pipeline(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from benchmark.pipeline import run_suite
    from benchmark.profiles import load_suite

    suite = load_suite(args.suite, Path(args.params_file))
    if args.datasets:
        suite = replace(suite, datasets=tuple(d.strip() for d in args.datasets.split(",")))
    if args.models:
        suite = suite.only(tuple(m.strip() for m in args.models.split(",")))
    results = Path(args.results_dir or layout.suite_results(suite.name))
    summary = run_suite(
        suite,
        data_root=_data_root(args),
        mirror=_mirror(args),
        raw_root=_raw_root(args),
        results_root=results,
        trials_root=Path(args.trials_dir or layout.suite_trials(suite.name)),
        device=args.device,
        log=logger.info,
    )
    table, _, caption = layout.table_path(results, "table3").read_text().partition("\n\n")
    rows = table.splitlines()
    print("\n".join(rows[:2] + [row for row in rows[2:] if row.split("|")[1].strip() in suite.datasets]))
    print(f"\n{caption}")
    print(f"profile {suite.profile.name}: {suite.profile.description}")
    if args.compare:
        from benchmark.report.compare import reproduced_message

        print(reproduced_message(results, Path(args.compare))[1])
    print(f"tables: {results / 'tables'}  figures: {results / 'figures'}  page: {results / 'report.html'}")
    print(f"seconds per stage: {summary['seconds']}")


def cmd_regress(args: argparse.Namespace) -> None:
    from benchmark.profiles import load_profile
    from benchmark.regression import run_gate

    models = [m.strip() for m in args.models.split(",")] if args.models else None
    result = run_gate(
        load_profile("gate", Path(args.params_file)),
        data_root=_data_root(args),
        models=models,
        reference_path=Path(args.reference),
        update=args.update,
        log=logger.info,
    )
    print(result.markdown())
    if args.update:
        print(f"references written to {args.reference}")
    elif result.failed:
        raise TedbenchError(f"metric regression beyond tolerance: {', '.join(result.failed)}")


def cmd_dvc_yaml(args: argparse.Namespace) -> None:
    from benchmark import dvcgen

    current = dvcgen.write(Path(args.out), Path(args.params_file), check=args.check)
    if args.check and not current:
        raise TedbenchError(f"{args.out} is not what params.yaml and the code generate; run `tedbench dvc-yaml`")
    logger.info(f"{args.out}: {'up to date' if current else 'written'}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tedbench",
        description="Sequential recommendation with item text: the TedRec paper's benchmark, reproducible.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--data-root", help=f"where processed data and embeddings live (default: ${layout.DATA_ENV} or ./data)"
        )
        p.add_argument("--mirror", help="offline mirror folder standing in for upstream (default: $TEDBENCH_MIRROR)")
        p.add_argument("--raw-root", help="verified local copies of raw files (default: $TEDBENCH_RAW or ./datasets)")
        return p

    def ties(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--tie-order",
            choices=("random", "file"),
            default="random",
            help="order of items sharing a timestamp (default: seeded random, as the official pipeline)",
        )
        p.add_argument(
            "--tie-seed", type=argtypes.seed, default=2020, help="seed of the random tie order (default: 2020)"
        )

    def source_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", required=True, help="a built-in dataset (`tedbench stats` lists them)")
        p.add_argument("--form", help="force one source form (e.g. upstream, csv, recbole-atomic)")
        p.add_argument("--offline", action="store_true", help="never download; use the raw folder or the mirror only")
        p.add_argument(
            "--allow-unpinned",
            action="store_true",
            help="accept files whose checksum is not pinned yet (downloaded or found locally)",
        )

    p = common(
        sub.add_parser(
            "fetch", help="copy a dataset's verified raw files into the raw folder (from the mirror or upstream)"
        )
    )
    source_options(p)
    p.set_defaults(func=cmd_fetch)

    p = common(sub.add_parser("prepare", help="verify and process a dataset (raw folder, mirror, or upstream)"))
    source_options(p)
    p.add_argument(
        "--k-core", type=int, default=5, help="iterative k-core filter on users and items (default 5, as the paper)"
    )
    p.add_argument("--json", action="store_true", help="print the processed counts as JSON")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a prepared folder built from other inputs (identical inputs: nothing to do)",
    )
    ties(p)
    p.set_defaults(func=cmd_prepare)

    p = common(
        sub.add_parser(
            "sample", help="write a seeded invoice sample of Online Retail's CSV (builds the bundled OR-sample)"
        )
    )
    p.add_argument("--dataset", default="OR", help="dataset to sample (default: OR, its csv form)")
    p.add_argument("--invoices", type=argtypes.positive_int, required=True, help="number of invoices (users) to draw")
    p.add_argument(
        "--items",
        type=argtypes.positive_int,
        help="keep only the rows of this many seeded-random stock codes (default: all)",
    )
    p.add_argument("--seed", type=argtypes.seed, default=2020, help="seed of the stock-code sample (default: 2020)")
    p.add_argument("--out", required=True, help="the .csv.gz file to write (atomically)")
    p.set_defaults(func=cmd_sample)

    p = common(sub.add_parser("import", help="import any RecBole dataset (atomic or benchmark files)"))
    p.add_argument("--name", required=True, help="name of the imported dataset (its folder under --data-root)")
    p.add_argument("--atomic", help="a RecBole .inter file (user_id, item_id, optional timestamp)")
    p.add_argument("--item", help="the matching .item file for item text")
    p.add_argument("--benchmark", help="a folder with NAME.train/valid/test.inter benchmark files")
    p.add_argument(
        "--text-fields",
        metavar="A,B,...",
        help="the .item fields that make up the item text, in this order (default: every field but the item id "
        "of type token, token_seq or float, in file order); values joined by spaces, '.' at the end",
    )
    p.add_argument(
        "--field-map",
        metavar="user=COL,item=COL,time=COL",
        help="names of the user, item and time fields of the .inter/.item files "
        "(default: user_id, item_id, timestamp if present)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace an imported dataset of this name built from other inputs"
    )
    ties(p)
    p.set_defaults(func=cmd_import)

    p = common(sub.add_parser("export", help="write a prepared or imported dataset as RecBole benchmark files"))
    p.add_argument(
        "--format",
        choices=("recbole",),
        required=True,
        help="recbole: NAME.train/valid/test.inter (tedbench's leave-one-out rows) and NAME.item (item text)",
    )
    p.add_argument("--dataset", required=True, help="a prepared or imported dataset")
    p.add_argument("--out", required=True, help="the folder to write (must be empty or absent)")
    p.add_argument("--force", action="store_true", help="replace an earlier export in --out")
    p.set_defaults(func=cmd_export)

    p = common(sub.add_parser("stats", help="dataset statistics as the paper's Table 2 counts them"))
    p.add_argument("--dataset", required=True, help="a prepared or imported dataset")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON instead of a table")
    p.set_defaults(func=cmd_stats)

    p = common(sub.add_parser("embed", help="item-text embeddings for a prepared dataset (cached)"))
    p.add_argument("--dataset", required=True, help="a prepared or imported dataset")
    p.add_argument("--encoder", required=True, help="a text encoder (e.g. minilm, bert-cls, random)")
    p.add_argument("--device", type=argtypes.device, help="cpu, cuda, cuda:K (default: cuda if available)")
    p.add_argument(
        "--batch-size", type=argtypes.positive_int, default=32, help="item texts encoded per batch (default: 32)"
    )
    p.add_argument("--seed", type=argtypes.seed, default=2020, help="seed of the random encoder")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("models", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern (default: every model)")
    p.add_argument("--json", action="store_true", help="print the models and their options as JSON")
    p.set_defaults(func=cmd_models)

    def run_options(p: argparse.ArgumentParser) -> None:
        common(p)
        p.add_argument(
            "--model", required=True, help="a registered model or recbole:<Name> (bench: a comma list or `all`)"
        )
        p.add_argument("--dataset", required=True, help="a prepared or imported dataset (e.g. OR-sample)")
        p.add_argument("--encoder", help="item-text encoder for models that need text (default: minilm)")
        p.add_argument("--device", type=argtypes.device, help="cpu, cuda, cuda:K (default: cuda if available)")
        p.add_argument("--seed", type=argtypes.seed, default=2020, help="training seed (default: 2020)")
        p.add_argument("--lr", type=argtypes.positive_float, help="Adam learning rate (default: the profile's)")
        p.add_argument("--epochs", type=argtypes.positive_int, help="epoch budget (default: the profile's)")
        p.add_argument("--batch-size", type=argtypes.positive_int, help="training batch size (default: the profile's)")
        p.add_argument("--params", help="JSON file of model options (e.g. exported best parameters)")
        p.add_argument(
            "--profile",
            help="budget profile from --params-file: paper, reduced, demo "
            "(default: none = the paper's budget and sizes)",
        )
        p.add_argument(
            "--params-file", default="params.yaml", help="where profiles and suites are declared (default: params.yaml)"
        )
        p.add_argument(
            "--set",
            action="append",
            type=argtypes.assignment,
            metavar="KEY=VALUE",
            help="override one model option (VALUE read as JSON, else text)",
        )
        p.add_argument(
            "--amp", choices=("none", "bf16"), default="none", help="autocast precision (default: none = fp32)"
        )
        p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on Ampere+ GPUs")
        p.add_argument("--compile", action="store_true", help="torch.compile the training step")

    p = sub.add_parser("train", help="train and evaluate one model")
    run_options(p)
    p.add_argument("--out", help="result folder (default: runs/train/DATASET/MODEL/seedSEED)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted or failed run of the same settings from its last checkpoint",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="discard what --out holds (another attempt, other settings) and start afresh",
    )
    p.add_argument("--tag", help="free label stored in config.json (an ablation variant, a budget profile)")
    p.add_argument("--max-steps", type=argtypes.positive_int, help="cap training steps per epoch (quick checks)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("tune", help="one worker of an Optuna study (start several on one storage to scale out)")
    run_options(p)
    p.add_argument(
        "--storage", help="sqlite:///FILE or postgresql://USER:PASS@HOST/DB (default: results/tuning/DATASET/MODEL.db)"
    )
    p.add_argument(
        "--n-trials", type=argtypes.positive_int, help="study budget (default: the whole grid, or 20 for tpe)"
    )
    p.add_argument(
        "--sampler",
        choices=("grid", "tpe"),
        default="grid",
        help="grid (the paper's learning-rate grid by default) or seeded TPE over the model's search space",
    )
    p.add_argument(
        "--grid",
        action="append",
        type=argtypes.grid_dimension,
        metavar="PARAM=V1,V2",
        help="grid dimension replacing the paper's grid (repeatable)",
    )
    p.add_argument(
        "--protocol",
        help="tuning protocol from --params-file (paper, baselines): its sampler, budget, "
        "sampler seed and searched dimensions",
    )
    p.add_argument("--timeout", type=argtypes.positive_float, help="stop claiming new trials after this many seconds")
    p.add_argument("--max-steps", type=argtypes.positive_int, help="cap training steps per epoch (quick checks)")
    p.add_argument(
        "--results-dir", default=str(layout.RESULTS), help=f"where best parameters go (default: {layout.RESULTS})"
    )
    p.add_argument(
        "--runs-dir",
        default=str(layout.TUNE_SCRATCH),
        help=f"run folders of the trials (default: {layout.TUNE_SCRATCH})",
    )
    p.add_argument(
        "--grace-period",
        type=argtypes.positive_int,
        default=60,
        help="seconds without a heartbeat before a trial counts as dead and is re-queued",
    )
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser(
        "report", help="paper-style tables, significance tests and figures from stored runs (nothing else)"
    )
    p.add_argument(
        "--runs",
        default=str(layout.suite_runs(layout.RESULTS)),
        help="folder of training runs (searched recursively for config.json)",
    )
    p.add_argument("--out", default=str(layout.RESULTS), help="writes OUT/tables, OUT/figures, OUT/metrics.json")
    p.add_argument("--tag", help="report the runs with this tag (default: untagged runs)")
    p.add_argument(
        "--encoder", help="text encoder of the text models in Tables 3-4 (default: bert-cls if run, else minilm)"
    )
    p.add_argument(
        "--allow-mixed",
        action="store_true",
        help="let a table cell average runs whose configurations differ in more than the seed "
        "(the captions then say so)",
    )
    p.add_argument(
        "--skip-running",
        action="store_true",
        help="leave out runs that another process is still training (a progress report while workers run); "
        "interrupted or failed runs are still refused",
    )
    p.add_argument(
        "--html",
        action="store_true",
        help="also write OUT/report.html: the tables (sortable), tests, figures and provenance in one self-contained "
        "page (without it, an earlier report.html is removed)",
    )
    p.set_defaults(func=cmd_report)

    p = common(
        sub.add_parser("pipeline", help="a whole suite from params.yaml: prepare, embed, tune, train seeds, report")
    )
    p.add_argument("--suite", default="demo", help="suite in --params-file (default: demo, the bundled sample)")
    p.add_argument("--datasets", help="comma list replacing the suite's datasets (e.g. one worker per dataset)")
    p.add_argument(
        "--models",
        help="comma list of the suite's models to run (e.g. one worker per group of models; TedRec brings its "
        "ablations and extra encoders)",
    )
    p.add_argument(
        "--params-file", default="params.yaml", help="where profiles and suites are declared (default: params.yaml)"
    )
    p.add_argument("--device", type=argtypes.device, help="cpu, cuda, cuda:K (default: cuda if available)")
    p.add_argument(
        "--results-dir",
        help="default: results/SUITE (best parameters, runs with their per-user ranks, tables, figures)",
    )
    p.add_argument("--trials-dir", help="run folders of the tuning trials (default: runs/SUITE/tune)")
    p.add_argument(
        "--compare",
        metavar="RESULTS",
        help="a results folder (e.g. the committed results/demo) whose Table 3 this run should reproduce; "
        "prints 'reproduced: yes' or the cells that differ",
    )
    p.set_defaults(func=cmd_pipeline)

    p = common(
        sub.add_parser(
            "regress",
            help="metric-regression gate: every model, short fixed-seed runs on the bundled sample "
            "vs. committed references",
        )
    )
    p.add_argument("--models", help="comma list (default: every registered model)")
    p.add_argument(
        "--reference",
        default=str(layout.REGRESSION_REFERENCE),
        help=f"the committed reference metrics (default: {layout.REGRESSION_REFERENCE})",
    )
    p.add_argument("--params-file", default="params.yaml", help="declares profile 'gate'")
    p.add_argument(
        "--update", action="store_true", help="store the measured metrics as the new references (on purpose)"
    )
    p.set_defaults(func=cmd_regress)

    p = sub.add_parser("dvc-yaml", help="generate dvc.yaml from params.yaml (dvc_suites) and the code's imports")
    p.add_argument("--params-file", default="params.yaml", help="declares the suites to stage (default: params.yaml)")
    p.add_argument("--out", default="dvc.yaml", help="the file to write (default: dvc.yaml)")
    p.add_argument("--check", action="store_true", help="only compare; exit 2 when the file differs")
    p.set_defaults(func=cmd_dvc_yaml)

    p = sub.add_parser(
        "verify", help="train tedbench's model and the reference implementation side by side (fidelity table)"
    )
    run_options(p)
    p.add_argument(
        "--against",
        choices=("recbole", "official"),
        required=True,
        help="the reference: RecBole 1.2.1's model (installed with --no-deps), "
        "or the official code at --reference-code",
    )
    p.add_argument("--reference-code", metavar="PATH", help="a checkout of the official code (--against official)")
    p.add_argument(
        "--transplant",
        action="store_true",
        help="after training (or reusing) both sides, evaluate each side's best weights in the other "
        "(STEM.transplant.md) instead of writing the side-by-side report",
    )
    p.add_argument(
        "--lockstep",
        type=argtypes.positive_int,
        metavar="STEPS",
        help="instead of full runs, train both sides STEPS steps from the same weights on the same batches with "
        "the same router noise and dropout off, each with its own trainer; compare losses and weights "
        "(STEM.lockstep.md)",
    )
    p.add_argument(
        "--speed",
        type=argtypes.positive_int,
        metavar="STEPS",
        help="instead of full runs, time STEPS training steps per side (after 2 warm-up steps) from the same "
        "weights on the same batches, every option as given, alternating sides (STEM.speed.md)",
    )
    p.add_argument(
        "--seeds", type=argtypes.positive_int, default=3, help="seeds per side: --seed, --seed+1, ... (default: 3)"
    )
    p.add_argument("--out", default=str(layout.FIDELITY_DIR), help="where the Markdown and CSV tables go")
    p.add_argument(
        "--work",
        help="run folders of both sides (default: runs/verify/DATASET/MODEL/PROFILE[/official]); "
        "finished sides and seeds there are reused",
    )
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "compare-runs",
        help="finished runs of one setting under two conditions (seeds apart) side by side: learning curves, "
        "test metrics, a verdict",
    )
    p.add_argument("runs", help="folder searched for finished runs: the condition under test")
    p.add_argument("against", help="folder searched for finished runs of the same settings: the baseline")
    p.add_argument(
        "--labels", nargs=2, metavar=("RUNS", "AGAINST"), default=("runs", "against"), help="the sides' names"
    )
    p.add_argument("--out", default="results/fidelity", help="writes OUT/STEM.md, .epochs.csv, .test.csv")
    p.add_argument("--stem", required=True, help="file name stem of the report")
    p.set_defaults(func=cmd_compare_runs)

    p = sub.add_parser("bench", help="time training steps and full-sort evaluation")
    run_options(p)
    p.add_argument(
        "--steps", type=argtypes.positive_int, default=5, help="timed training steps per round (after 2 warm-up steps)"
    )
    p.add_argument(
        "--rounds",
        type=argtypes.positive_int,
        default=1,
        help="interleaved rounds: every model is timed once per round, so ratios survive a noisy machine",
    )
    p.add_argument(
        "--results-dir",
        default=str(layout.BENCH_DIR),
        help=f"where the timing CSV rows go (default: {layout.BENCH_DIR})",
    )
    p.add_argument(
        "--profile-ops",
        metavar="FILE",
        help="append each model's top operators (torch.profiler, one step) to this markdown file",
    )
    p.set_defaults(func=cmd_bench)
    return parser


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of blanks collapsed to single spaces."""
    return " ".join(str(text).split())


def _fail(message: str) -> int:
    print(f"tedbench: error: {one_line(message)}", file=sys.stderr)
    return 2


# What to do about an operating-system error on a path, by errno.
_OS_HINTS = {
    errno.EACCES: "check its permissions or choose another folder",
    errno.EPERM: "check its permissions or choose another folder",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.ENOSPC: "the disk is full; free some space or choose another folder",
    errno.EDQUOT: "the disk quota is exhausted; free some space or choose another folder",
    errno.ENOTDIR: "a file stands where a folder is expected",
    errno.EISDIR: "a folder stands where a file is expected",
    errno.EEXIST: "a file stands where a folder is expected",
}


def os_error_message(exc: OSError) -> str:
    """One line naming the path, the problem and what to do about it."""
    from benchmark.fsutil import published_path

    name = exc.filename
    path = f"{published_path(os.fsdecode(name))}: " if isinstance(name, (str, bytes, os.PathLike)) else ""
    problem = exc.strerror or (str(exc.args[0]) if exc.args else exc.__class__.__name__)
    hint = _OS_HINTS.get(exc.errno)
    return f"{path}{problem}" + (f" ({hint})" if hint else "")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, `tedbench: error: ...`, exit status 2.

    Subcommand parsers are made by `add_parser`, which uses the class of their parent: this one.
    """

    def error(self, message: str):
        self.exit(2, f"tedbench: error: {one_line(message)} (see `{self.prog} --help`)\n")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors (already printed) and --help
        return int(exc.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging()
    keep_freed_memory()
    use_onednn_float32()
    try:
        args.func(args)
    except TedbenchError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(os_error_message(exc))
    except KeyboardInterrupt:
        print("tedbench: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
