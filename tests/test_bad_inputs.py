"""Bad inputs to `tedbench` and their one-line errors.

Every row is a command line (with the small input files it reads) and a substring of the expected
message. Each must exit with status 2, print exactly one line `tedbench: error: ...` on stderr, and
write nothing: neither in the working folder nor beside its inputs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import benchmark.cli as cli
from benchmark.cli import main
from tests.faultkit import run_cli
from tests.modelkit import import_tiny_dataset

REPO = Path(__file__).resolve().parents[1]
PARAMS = str(REPO / "params.yaml")
TRAIN = ["train", "--model", "SASRec", "--dataset", "tiny"]
TUNE = ["tune", "--model", "SASRec", "--dataset", "tiny"]
BENCH = ["bench", "--model", "SASRec", "--dataset", "tiny"]
SAMPLE = ["sample", "--dataset", "OR-sample"]


def profile_file(body: str) -> dict[str, str]:
    """A params file declaring one profile `p` with `body` (indented YAML)."""
    return {"params.yaml": "profiles:\n  p:\n" + body}


def suite_file(**fields: str) -> dict[str, str]:
    """A params file declaring a valid suite `s` (profile `p`), with some of its fields replaced."""
    suite = {
        "profile": "p",
        "datasets": "[OR-sample]",
        "models": "[SASRec, TedRec]",
        "seeds": "[1]",
        "ablations": "[{tag: wo-IF, set: use_id_filter=false}]",
        **fields,
    }
    lines = "".join(f"    {key}: {value}\n" for key, value in suite.items() if value is not None)
    return {"params.yaml": "profiles:\n  p: {model: {hidden_size: 8}}\nsuites:\n  s:\n" + lines}


# (id, argv with {in} for the inputs folder, files to create there, expected part of the message)
PF = ["--params-file", "{in}/params.yaml"]
PROFILE = [*TRAIN, "--profile", "p", *PF]
SUITE = ["pipeline", "--suite", "s", *PF]
PJ = ["--params", "{in}/p.json"]
EMBED = ["embed", "--dataset", "tiny", "--encoder", "random"]
ROWS: list[tuple[str, list[str], dict[str, str | bytes], str]] = [
    # usage
    ("unknown-command", ["trian"], {}, "invalid choice: 'trian'"),
    ("missing-required", ["train", "--model", "SASRec"], {}, "the following arguments are required: --dataset"),
    ("unknown-flag", [*TRAIN, "--epohcs", "3"], {}, "unrecognized arguments: --epohcs 3"),
    ("bad-choice", [*TRAIN, "--amp", "fp16"], {}, "argument --amp: invalid choice: 'fp16'"),
    (
        "unknown-model",
        ["train", "--model", "SASRex", "--dataset", "tiny"],
        {},
        "unknown model 'SASRex' (did you mean 'SASRec'?)",
    ),
    # numbers
    ("lr-negative", [*TRAIN, "--lr", "-1"], {}, "argument --lr: expected a finite number > 0, got '-1'"),
    ("lr-zero", [*TRAIN, "--lr", "0"], {}, "argument --lr: expected a finite number > 0"),
    ("lr-nan", [*TRAIN, "--lr", "nan"], {}, "argument --lr: expected a finite number > 0, got 'nan'"),
    ("lr-inf", [*TRAIN, "--lr", "inf"], {}, "argument --lr: expected a finite number > 0, got 'inf'"),
    ("lr-text", [*TRAIN, "--lr", "fast"], {}, "argument --lr: expected a finite number > 0, got 'fast'"),
    ("epochs-zero", [*TRAIN, "--epochs", "0"], {}, "argument --epochs: expected an integer >= 1, got '0'"),
    ("epochs-fraction", [*TRAIN, "--epochs", "1.5"], {}, "argument --epochs: expected an integer >= 1, got '1.5'"),
    ("batch-negative", [*TRAIN, "--batch-size", "-3"], {}, "argument --batch-size: expected an integer >= 1"),
    ("max-steps-zero", [*TRAIN, "--max-steps", "0"], {}, "argument --max-steps: expected an integer >= 1"),
    ("seed-negative", [*TRAIN, "--seed", "-1"], {}, "argument --seed: expected an integer in [0, 4294967296)"),
    ("seed-too-big", [*TRAIN, "--seed", str(2**32)], {}, "argument --seed: expected an integer in [0, 4294967296)"),
    ("n-trials-zero", [*TUNE, "--n-trials", "0"], {}, "argument --n-trials: expected an integer >= 1"),
    ("timeout-zero", [*TUNE, "--timeout", "0"], {}, "argument --timeout: expected a finite number > 0"),
    ("timeout-nan", [*TUNE, "--timeout", "NaN"], {}, "argument --timeout: expected a finite number > 0"),
    ("grace-zero", [*TUNE, "--grace-period", "0"], {}, "argument --grace-period: expected an integer >= 1"),
    ("tune-max-steps", [*TUNE, "--max-steps", "-2"], {}, "argument --max-steps: expected an integer >= 1"),
    ("steps-zero", [*BENCH, "--steps", "0"], {}, "argument --steps: expected an integer >= 1"),
    ("rounds-negative", [*BENCH, "--rounds", "-1"], {}, "argument --rounds: expected an integer >= 1"),
    ("embed-batch-zero", [*EMBED, "--batch-size", "0"], {}, "argument --batch-size"),
    (
        "invoices-zero",
        [*SAMPLE, "--invoices", "0", "--out", "s.csv.gz"],
        {},
        "argument --invoices: expected an integer >= 1",
    ),
    (
        "invoices-text",
        [*SAMPLE, "--invoices", "ten", "--out", "s.csv.gz"],
        {},
        "argument --invoices: expected an integer >= 1",
    ),
    ("items-zero", [*SAMPLE, "--invoices", "3", "--items", "0", "--out", "s.csv.gz"], {}, "argument --items: expected"),
    ("tie-seed-negative", ["prepare", "--dataset", "OR-sample", "--tie-seed", "-5"], {}, "argument --tie-seed"),
    # devices
    (
        "device-gpu",
        [*TRAIN, "--device", "gpu"],
        {},
        "argument --device: unknown device 'gpu' (accepted here: auto, cpu",
    ),
    (
        "device-absent",
        [*TRAIN, "--device", "cuda:9"],
        {},
        "argument --device: device 'cuda:9' is not present on this machine (accepted here: auto, cpu",
    ),
    ("device-cpu-x", [*TRAIN, "--device", "cpu:x"], {}, "argument --device: unknown device 'cpu:x'"),
    ("device-embed", [*EMBED, "--device", "tpu"], {}, "argument --device"),
    ("device-pipeline", ["pipeline", "--device", "gpu"], {}, "argument --device: unknown device 'gpu'"),
    # --set
    ("set-no-equals", [*TRAIN, "--set", "hidden_size"], {}, "argument --set: expected KEY=VALUE"),
    ("set-empty-key", [*TRAIN, "--set", "=64"], {}, "argument --set: expected KEY=VALUE"),
    (
        "set-typo",
        [*TRAIN, "--set", "hiden_size=64"],
        {},
        "argument --set: no model has an option 'hiden_size' (did you mean 'hidden_size'?)",
    ),
    (
        "set-text-for-int",
        [*TRAIN, "--set", "hidden_size=abc"],
        {},
        "hidden_size='abc' is not accepted (hidden_size takes an integer >= 1)",
    ),
    ("set-size-zero", [*TRAIN, "--set", "hidden_size=0"], {}, "hidden_size=0 is not accepted"),
    ("set-size-fraction", [*TRAIN, "--set", "hidden_size=64.5"], {}, "hidden_size=64.5 is not accepted"),
    (
        "set-dropout-one",
        [*TRAIN, "--set", "hidden_dropout_prob=1"],
        {},
        "hidden_dropout_prob=1 is not accepted (hidden_dropout_prob takes a number in [0, 1))",
    ),
    ("set-dropout-negative", [*TRAIN, "--set", "attn_dropout_prob=-0.1"], {}, "attn_dropout_prob=-0.1 is not accepted"),
    (
        "set-bool",
        [*TRAIN, "--set", "use_gates=maybe"],
        {},
        "use_gates='maybe' is not accepted (use_gates takes true or false)",
    ),
    ("set-lr-nan", [*TRAIN, "--set", "learning_rate=NaN"], {}, "learning_rate=nan is not accepted"),
    ("set-eps-zero", [*TRAIN, "--set", "layer_norm_eps=0"], {}, "layer_norm_eps=0 is not accepted"),
    ("set-other-models-option", [*TRAIN, "--set", "n_exps=4"], {}, "--set: model SASRec has no option 'n_exps' (only"),
    ("set-heads", [*TRAIN, "--set", "hidden_size=31"], {}, "hidden_size 31 is not a multiple of n_heads 2"),
    ("bench-set-typo", [*BENCH, "--set", "inner_sise=8"], {}, "did you mean 'inner_size'?"),
    # --grid
    ("grid-no-equals", [*TUNE, "--grid", "learning_rate"], {}, "argument --grid: expected PARAM=V1,V2,..."),
    ("grid-no-values", [*TUNE, "--grid", "learning_rate="], {}, "argument --grid: expected PARAM=V1,V2,..."),
    ("grid-empty-key", [*TUNE, "--grid", "=0.1,0.2"], {}, "argument --grid: expected PARAM=V1,V2,..."),
    ("grid-empty-value", [*TUNE, "--grid", "learning_rate=0.1,,0.2"], {}, "argument --grid: expected PARAM=V1,V2,..."),
    ("grid-typo", [*TUNE, "--grid", "learning_rte=0.1,0.2"], {}, "did you mean 'learning_rate'?"),
    ("grid-bad-value", [*TUNE, "--grid", "learning_rate=0.1,-1"], {}, "learning_rate=-1 is not accepted"),
    # --params (JSON)
    ("params-missing", [*TRAIN, "--params", "{in}/none.json"], {}, "none.json: no such file"),
    (
        "params-malformed",
        [*TRAIN, *PJ],
        {"p.json": '{"hidden_size": 64,\n'},
        "p.json: malformed JSON at line 2 column 1",
    ),
    ("params-list", [*TRAIN, *PJ], {"p.json": "[64]"}, "p.json: expected a JSON object of model options"),
    ("params-inner-list", [*TRAIN, *PJ], {"p.json": '{"params": [64]}'}, "expected a JSON object of model options"),
    ("params-binary", [*TRAIN, *PJ], {"p.json": b"\xff\xfe{}"}, "p.json: not UTF-8 text"),
    (
        "params-typo",
        [*TRAIN, *PJ],
        {"p.json": '{"params": {"hiden_size": 64}}'},
        "p.json: model SASRec has no option 'hiden_size' (did you mean 'hidden_size'?)",
    ),
    (
        "params-bad-value",
        [*TRAIN, *PJ],
        {"p.json": '{"inner_size": "wide"}'},
        "p.json: inner_size='wide' is not accepted",
    ),
    ("tune-params-typo", [*TUNE, *PJ], {"p.json": '{"n_layer": 1}'}, "did you mean 'n_layers'?"),
    # --params-file (YAML): profiles
    ("yaml-missing", [*TRAIN, "--profile", "demo", "--params-file", "{in}/none.yaml"], {}, "none.yaml: no params file"),
    (
        "yaml-malformed",
        PROFILE,
        {"params.yaml": "profiles:\n  p: {model: [\n"},
        "params.yaml: malformed YAML at line 3",
    ),
    ("yaml-top-list", PROFILE, {"params.yaml": "- p\n"}, "expected a mapping at the top level"),
    ("yaml-profiles-list", PROFILE, {"params.yaml": "profiles: [p]\n"}, "profiles must be a mapping"),
    (
        "profile-unknown",
        [*TRAIN, "--profile", "reduce", "--params-file", PARAMS],
        {},
        "no profile 'reduce' (did you mean 'reduced'?)",
    ),
    ("profile-not-mapping", PROFILE, {"params.yaml": "profiles:\n  p: 3\n"}, "profile 'p' must be a mapping"),
    (
        "profile-model-typo",
        PROFILE,
        profile_file("    model: {hiden_size: 64}\n"),
        "profile 'p' model options: no model has an option 'hiden_size' (did you mean 'hidden_size'?)",
    ),
    ("profile-model-zero", PROFILE, profile_file("    model: {n_exps: 0}\n"), "n_exps=0 is not accepted"),
    (
        "profile-lr-text",
        PROFILE,
        profile_file("    model: {learning_rate: 1e-3}\n"),
        "learning_rate='1e-3' is not accepted",
    ),
    (
        "profile-train-typo",
        PROFILE,
        profile_file("    train: {epoch: 3}\n"),
        "unknown training options epoch (did you mean 'epochs'?)",
    ),
    ("profile-epochs-zero", PROFILE, profile_file("    train: {epochs: 0}\n"), "train option epochs=0 is not accepted"),
    (
        "profile-patience-negative",
        [*TUNE, "--profile", "p", *PF],
        profile_file("    train: {patience: -1}\n"),
        "patience=-1 is not accepted (patience takes an integer >= 0)",
    ),
    (
        "profile-bench",
        [*BENCH, "--profile", "p", *PF],
        profile_file("    model: {n_exp: 2}\n"),
        "did you mean 'n_exps'?",
    ),
    ("regress-no-gate", ["regress", *PF], profile_file("    train: {}\n"), "no profile 'gate'"),
    # --params-file (YAML): suites
    (
        "suite-unknown",
        ["pipeline", "--suite", "dem", "--params-file", PARAMS],
        {},
        "no suite 'dem' (did you mean 'demo'?)",
    ),
    (
        "suite-ablation-typo",
        SUITE,
        suite_file(ablations="[{tag: wo-AG, set: use_gate=false}]"),
        "ablation 'wo-AG': model TedRec has no option 'use_gate' (did you mean 'use_gates'?)",
    ),
    (
        "suite-ablation-value",
        SUITE,
        suite_file(ablations="[{tag: wo-AG, set: use_gates=maybe}]"),
        "use_gates='maybe' is not accepted",
    ),
    (
        "suite-ablation-no-equals",
        SUITE,
        suite_file(ablations="[{tag: wo-AG, set: use_gates}]"),
        "ablation 'wo-AG': expected KEY=VALUE, got 'use_gates'",
    ),
    (
        "suite-unknown-model",
        SUITE,
        suite_file(models="[SASRek]"),
        "suite 's': unknown model 'SASRek' (did you mean 'SASRec'?)",
    ),
    ("suite-bad-seed", SUITE, suite_file(seeds="[-1]"), "seed -1 is not accepted"),
    ("suite-dataset-outside", SUITE, suite_file(datasets="['../../etc']"), "dataset '../../etc': use 1-128 letters"),
    ("suite-tag-path", SUITE, suite_file(ablations="[{tag: ../x, set: use_gates=false}]"), "ablation tag '../x'"),
    ("suite-encoder-path", SUITE, suite_file(encoders="[/tmp/x]"), "encoder '/tmp/x'"),
    (
        "suite-datasets-text",
        SUITE,
        suite_file(datasets="OR-sample"),
        "suite 's': datasets must be a list, got str 'OR-sample'",
    ),
    ("suite-incomplete", SUITE, suite_file(seeds=None), "suite 's' lacks 'seeds'; a suite needs"),
    ("suite-profile-typo", SUITE, suite_file(profile="q"), "no profile 'q'"),
]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(empty working folder, made current; inputs folder)."""
    work, inputs = tmp_path / "work", tmp_path / "inputs"
    work.mkdir()
    inputs.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("TEDBENCH_DATA", raising=False)
    return work, inputs


def assert_one_line_error(code: int, err: str, expected: str) -> None:
    assert code == 2, err
    assert err.startswith("tedbench: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert expected in err, err


@pytest.mark.parametrize(("argv", "files", "expected"), [pytest.param(*row[1:], id=row[0]) for row in ROWS])
def test_bad_input_is_one_line_and_writes_nothing(
    argv, files, expected, places, capsys: pytest.CaptureFixture[str]
) -> None:
    work, inputs = places
    for name, content in files.items():
        (inputs / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    before = snapshot(inputs)
    code = main([arg.replace("{in}", str(inputs)) for arg in argv])
    assert_one_line_error(code, capsys.readouterr().err, expected)
    assert snapshot(work) == {} and snapshot(inputs) == before


def test_enough_rows() -> None:
    assert len(ROWS) >= 40 and len({row[0] for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--model", "SASRec", "--dataset", "tiny", "--lr", "-1"], "argument --lr"),
        (["train", "--model", "SASRec", "--dataset", "tiny", "--set", "hiden_size=64"], "did you mean 'hidden_size'?"),
        (["pipeline", "--suite", "nope", "--params-file", PARAMS], "no suite 'nope'"),
    ],
)
def test_bad_input_in_a_subprocess(argv: list[str], expected: str, tmp_path: Path) -> None:
    proc = run_cli(argv, cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, expected)
    assert list(tmp_path.iterdir()) == [] and proc.stdout == ""


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_models", interrupted)
    assert main(["models"]) == 130
    assert capsys.readouterr().err == "tedbench: interrupted\n"


# Output folders that cannot take the output: simulated failures (always) and real file systems (where mounting works).


def sample_into(folder: Path) -> list[str]:
    return [*SAMPLE, "--invoices", "3", "--out", str(folder / "s.csv.gz")]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.EROFS, "Read-only file system (the file system is read-only; choose a writable folder)"),
        (errno.EACCES, "Permission denied (check its permissions or choose another folder)"),
        (errno.ENOSPC, "No space left on device (the disk is full; free some space or choose another folder)"),
        (errno.EDQUOT, "Disk quota exceeded (the disk quota is exhausted"),
    ],
)
def test_unwritable_output_is_one_line_naming_the_path(
    code: int, expected: str, places, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work, inputs = places
    real_replace = os.replace

    def failing_replace(src, dst):  # the publishing rename of an atomic write fails
        if str(dst).endswith("s.csv.gz"):
            raise OSError(code, os.strerror(code), str(src), str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    status = main(sample_into(inputs))
    assert_one_line_error(status, capsys.readouterr().err, f"{inputs / 's.csv.gz'}: {expected}")
    assert snapshot(inputs) == {} and snapshot(work) == {}


def test_a_file_where_a_folder_is_expected(places, capsys: pytest.CaptureFixture[str]) -> None:
    work, inputs = places
    (inputs / "taken").write_text("a file")
    status = main(sample_into(inputs / "taken" / "sub"))
    assert_one_line_error(status, capsys.readouterr().err, "taken")
    assert snapshot(inputs) == {"taken": b"a file"} and snapshot(work) == {}


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, options: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True, capture_output=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_tiny_dataset(
        tmp_path_factory.mktemp("bad-inputs"), 30, 8, 20, lambda user, step: user + step, noise=0.2, seed=1
    )


def test_read_only_file_system(places, tiny_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work, inputs = places
    with mounted_tmpfs(inputs / "ro", "size=64k,ro") as ro:
        assert_one_line_error(
            main(sample_into(ro)), capsys.readouterr().err, f"{ro / 's.csv.gz'}: Read-only file system"
        )
        train = [
            "train",
            "--model",
            "SASRec",
            "--dataset",
            "tiny",
            "--data-root",
            str(tiny_root),
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--max-steps",
            "1",
            "--set",
            "hidden_size=8",
            "--set",
            "inner_size=8",
            "--set",
            "n_layers=1",
            "--out",
            str(ro / "run"),
        ]
        assert_one_line_error(main(train), capsys.readouterr().err, f"{ro / 'run'}")
        assert snapshot(ro) == {}
    assert snapshot(work) == {}


def test_full_file_system(places, capsys: pytest.CaptureFixture[str]) -> None:
    work, inputs = places
    with mounted_tmpfs(inputs / "full", "size=64k") as full:
        with contextlib.suppress(OSError), open(full / "filler", "wb", buffering=0) as filler:
            while True:
                filler.write(b"\0" * 4096)
        before = snapshot(full)
        assert_one_line_error(
            main(sample_into(full)), capsys.readouterr().err, f"{full / 's.csv.gz'}: No space left on device"
        )
        assert snapshot(full) == before
    assert snapshot(work) == {}


def test_checkpoint_on_a_full_file_system(tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint that does not fit is one line naming it (torch's own writer would raise a bare RuntimeError)."""
    with mounted_tmpfs(tmp_path / "full", "size=96k") as full:
        train = [
            "train",
            "--model",
            "SASRec",
            "--dataset",
            "tiny",
            "--data-root",
            str(tiny_root),
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--max-steps",
            "1",
            "--set",
            "hidden_size=64",
            "--out",
            str(full / "run"),
        ]
        code, err = main(train), capsys.readouterr().err.split("\r")[-1]  # after the epoch's progress bar
        assert_one_line_error(code, err, "checkpoints/best.pt: No space left on device (the disk is full")
        assert not (full / "run" / "metrics.json").exists() and not list(full.rglob(".*.tmp"))
