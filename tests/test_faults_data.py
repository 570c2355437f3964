"""Data commands under faults: a real SIGKILL at each pause point, then a rerun equal to a clean run; bad inputs.

Kills run `tedbench` in a subprocess (tests/faultkit.py); the rerun's data root must equal, byte for byte,
a data root written by uninterrupted runs, with no staging leftovers. Bad inputs run the command line
in-process: exit 2, one `tedbench: error:` line, and nothing created or changed under the test folder.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.data.prepare import import_recbole
from benchmark.data.readers.online_retail import COLUMNS
from tests.faultkit import kill_at, orphans, run_cli


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing found through the environment: every folder is named on the command line."""
    for name in ("TEDBENCH_MIRROR", "TEDBENCH_RAW", "TEDBENCH_DATA"):
        monkeypatch.delenv(name, raising=False)


# --- synthetic RecBole atomic files ------------------------------------------------------------


def write_atomic(folder: Path, users: int = 30, per_user: int = 6, items: int = 12) -> tuple[Path, Path]:
    """`synthetic.inter` (user_id, item_id, timestamp with ties) and `synthetic.item` (ml-1m text fields)."""
    folder.mkdir(parents=True, exist_ok=True)
    inter = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user in range(users):
        for step in range(per_user):
            inter.append(f"u{user}\ti{(user * 7 + step * 5) % items}\t{1000 + user * 10 + step // 2}")
    item = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq"]
    item += [f"i{i}\tTitle {i}\t{1990 + i}\tDrama{' Comedy' * (i % 2)}" for i in range(items)]
    paths = folder / "synthetic.inter", folder / "synthetic.item"
    for path, lines in zip(paths, (inter, item)):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


# --- comparing data roots -----------------------------------------------------------------------


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` -> its bytes (None for a folder)."""
    result: dict[str, bytes | None] = {}
    for path in sorted(Path(root).rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_dir():
            result[key] = None
        else:
            result[key] = path.read_bytes()
    return result


def published(root: Path) -> dict[str, bytes | None]:
    """The files of `tree(root)` outside staging (hidden) paths."""
    return {k: v for k, v in tree(root).items() if v is not None and not any(p.startswith(".") for p in k.split("/"))}


def snapshot(root: Path) -> dict[str, tuple[bool, bytes | None]]:
    """Every path under `root`, links included, with its bytes: any creation or change shows."""
    return {
        p.relative_to(root).as_posix(): (p.is_symlink(), p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(Path(root).rglob("*"))
    }


# --- the commands and their uninterrupted runs ----------------------------------------------------


def prepare_args(root: Path, raw: Path, *extra: str) -> list[str]:
    return ["prepare", "--dataset", "OR-sample", "--offline", "--data-root", str(root), "--raw-root", str(raw), *extra]


def import_args(root: Path, inputs: Path, *extra: str) -> list[str]:
    inter, item = inputs / "synthetic.inter", inputs / "synthetic.item"
    return [
        "import",
        "--name",
        "synthetic",
        "--atomic",
        str(inter),
        "--item",
        str(item),
        "--data-root",
        str(root),
        *extra,
    ]


def embed_args(root: Path) -> list[str]:
    return ["embed", "--dataset", "OR-sample", "--encoder", "random", "--device", "cpu", "--data-root", str(root)]


def fetch_args(raw: Path) -> list[str]:
    return ["fetch", "--dataset", "OR-sample", "--offline", "--raw-root", str(raw)]


def cli_ok(args: list[str]) -> None:
    done = run_cli(args)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders written by uninterrupted runs: data roots of `prepare` (OR-sample), `import` (synthetic) and
    `embed` (prepare, then embed), and the raw root of `fetch` (OR-sample)."""
    base = tmp_path_factory.mktemp("clean")
    inputs = base / "inputs"
    write_atomic(inputs)
    roots = {name: base / name for name in ("prepare", "import", "embed")}
    cli_ok(prepare_args(roots["prepare"], base / "raw"))
    cli_ok(import_args(roots["import"], inputs))
    cli_ok(prepare_args(roots["embed"], base / "raw"))
    cli_ok(embed_args(roots["embed"]))
    roots["fetch"] = base / "fetched"
    cli_ok(fetch_args(roots["fetch"]))
    return roots


# --- SIGKILL at each pause point, then rerun ------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """Kill `command` at `point` after `setup` (which builds the data root's earlier state), then rerun."""

    command: str
    point: str
    setup: str = "none"  # none | prepared (clean OR-sample copied in) | other-import (a different import)
    extra: tuple[str, ...] = ()


KILLS = [
    Kill("prepare", "prepare.mid_write"),
    Kill("prepare", "prepare.before_publish"),
    Kill("prepare", "prepare.before_publish", setup="prepared"),  # identical inputs: the rerun is a no-op
    Kill("import", "import.mid_write"),
    Kill("import", "import.before_publish"),
    Kill("import", "import.before_publish", setup="other-import", extra=("--force",)),  # replacing a dataset
    Kill("embed", "embed.before_publish", setup="prepared"),
    Kill("embed", "embed.after_metadata", setup="prepared"),
    Kill("fetch", "fetch.before_publish"),
]


@pytest.mark.parametrize("case", KILLS, ids=lambda c: f"{c.point}-{c.setup}")
def test_kill_then_rerun_equals_clean_run(case: Kill, clean: dict[str, Path], tmp_path: Path) -> None:
    root, raw, inputs = tmp_path / "data", tmp_path / "raw", tmp_path / "inputs"
    write_atomic(inputs)
    if case.setup == "prepared":
        shutil.copytree(clean["prepare"] / "processed", root / "processed")
    elif case.setup == "other-import":
        write_atomic(tmp_path / "other", users=20, per_user=7)
        import_recbole("synthetic", data_root=root, atomic=tmp_path / "other" / "synthetic.inter")
    args = {
        "prepare": prepare_args(root, raw),
        "import": import_args(root, inputs),
        "embed": embed_args(root),
        "fetch": fetch_args(raw),
    }[case.command]
    args += list(case.extra)
    out = raw if case.command == "fetch" else root
    before = published(out)

    kill_at(args, case.point, tmp_path / "pause")
    assert orphans(out), f"the kill at {case.point} left no staging path: the point is not mid-write"
    after = published(out)
    assert all(after.get(path) == content for path, content in before.items()), "a killed run changed published files"
    # Only an embedding's metadata may be published ahead of its matrix (the matrix is what marks a cache hit).
    assert all(path.endswith(".json") and path[:-5] + ".npy" not in after for path in set(after) - set(before))

    cli_ok(args)
    assert orphans(out) == []
    assert tree(out) == tree(clean[case.command])


# --- bad inputs: one-line errors, nothing written -----------------------------------------------


def _inter(*rows: str, header: str = "user_id:token\titem_id:token\ttimestamp:float") -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        (tmp / "in").mkdir(exist_ok=True)
        (tmp / "in" / "x.inter").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")

    return make


def _item(header: str) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        _inter("u1\ti1\t1")(tmp)
        (tmp / "in" / "x.item").write_text(f"{header}\ni1\tA\t1999\tDrama\n", encoding="utf-8")

    return make


def _raw_files(dataset: str, *names: str, content: bytes = b"x\n") -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        folder = tmp / "raw" / dataset
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).write_bytes(content)

    return make


def _benchmark_files(test_header: str) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        folder = tmp / "raw" / "Food"
        folder.mkdir(parents=True, exist_ok=True)
        ok = "user_id:token\titem_id_list:token_seq\titem_id:token"
        (folder / "Food.train.inter").write_text(f"{ok}\nu1\ta\tb\n", encoding="utf-8")
        (folder / "Food.valid.inter").write_text(f"{ok}\nu1\ta b\tc\n", encoding="utf-8")
        (folder / "Food.test.inter").write_text(f"{test_header}\nu1\ta b c\td\n", encoding="utf-8")

    return make


def _or_zip_with_duplicate_column(tmp: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(list(COLUMNS[:4]) + ["Quantity"] + list(COLUMNS[4:]))
    buffer = io.BytesIO()
    book.save(buffer)
    folder = tmp / "raw" / "OR"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "online+retail.zip", "w") as archive:
        archive.writestr("Online Retail.xlsx", buffer.getvalue())


def _prepared(tmp: Path, sample_root: Path) -> None:
    shutil.copytree(sample_root / "processed", tmp / "data" / "processed")


def _imported(tmp: Path) -> None:
    write_atomic(tmp / "first")
    import_recbole("mine", data_root=tmp / "data", atomic=tmp / "first" / "synthetic.inter")


def _alias(tmp: Path) -> None:
    _imported(tmp)
    (tmp / "data" / "processed" / "alias").symlink_to(tmp / "data" / "processed" / "mine")


def _not_utf8(tmp: Path) -> None:
    _inter("u1\ti1\t1")(tmp)
    (tmp / "in" / "x.inter").write_bytes(b"user_id:token\titem_id:token\nu\xff1\ti1\n")


@dataclass(frozen=True)
class Bad:
    """argv (with {d} data root, {r} raw root, {t} test folder), the files to create first, the expected text."""

    name: str
    argv: str
    expected: str
    setup: Callable[..., None] | None = None
    needs_sample: bool = False


IMPORT = "import --data-root {d} --name x --atomic {t}/in/x.inter"
PREPARE = "prepare --data-root {d} --raw-root {r} --offline"
EMBED = "embed --data-root {d} --dataset OR-sample --device cpu"

BAD = [
    # prepare / fetch / stats
    Bad("k-core-zero", f"{PREPARE} --dataset OR-sample --k-core 0", "--k-core must be a whole number >= 1"),
    Bad("k-core-negative", f"{PREPARE} --dataset OR-sample --k-core -3", "--k-core must be a whole number >= 1"),
    Bad("unknown-dataset", f"{PREPARE} --dataset ml-2m", "unknown dataset 'ml-2m' (known: ml-1m, OR"),
    Bad("dataset-path", f"{PREPARE} --dataset ../OR", "unknown dataset '../OR'"),
    Bad("missing-files", f"{PREPARE} --dataset ml-1m --mirror {{t}}", "no complete form found"),
    Bad(
        "unknown-form",
        f"{PREPARE} --dataset OR --form excel",
        "dataset OR has no form 'excel' (known: upstream, csv, rda)",
    ),
    Bad(
        "unpinned-download",
        "prepare --data-root {d} --raw-root {r} --dataset Food",
        "upstream file has no pinned checksum; pass --allow-unpinned",
    ),
    Bad(
        "unpinned-local",
        f"{PREPARE} --dataset Office",
        "has no pinned checksum; pass --allow-unpinned",
        _raw_files("Office", "Office_Products.csv", "meta_Office_Products.json.gz"),
    ),
    Bad(
        "fetch-unpinned-local",
        "fetch --raw-root {r} --offline --dataset Office",
        "pass --allow-unpinned",
        _raw_files("Office", "Office_Products.csv", "meta_Office_Products.json.gz"),
    ),
    Bad(
        "other-inputs-no-force",
        f"{PREPARE} --dataset OR-sample --k-core 3",
        "already holds a dataset built from other inputs (k_core: 5 -> 3); pass --force",
        _prepared,
        needs_sample=True,
    ),
    Bad(
        "other-tie-order-no-force",
        f"{PREPARE} --dataset OR-sample --tie-order file",
        'tie_order: "random" -> "file"',
        _prepared,
        needs_sample=True,
    ),
    Bad(
        "benchmark-duplicate-header",
        f"{PREPARE} --dataset Food --form recbole-benchmark --allow-unpinned",
        "Food.test.inter: line 1: column 'item_id' appears twice",
        _benchmark_files("user_id:token\titem_id_list:token_seq\titem_id:token\titem_id:token"),
    ),
    Bad(
        "xlsx-duplicate-column",
        f"{PREPARE} --dataset OR --form upstream --allow-unpinned",
        "line 1: column 'Quantity' appears twice",
        _or_zip_with_duplicate_column,
    ),
    Bad(
        "data-root-is-a-file",
        f"{PREPARE} --dataset OR-sample --data-root {{t}}/file",
        "a file stands where a folder is expected",
        lambda t: (t / "file").write_text("not a folder\n"),
    ),
    Bad("stats-dataset-path", "stats --data-root {d} --dataset ../../etc", "dataset name '../../etc'"),
    # import
    Bad("name-parent", "import --data-root {d} --name .. --atomic {t}/in/x.inter", "--name '..'", _inter("u1\ti1\t1")),
    Bad("name-slash", "import --data-root {d} --name a/b --atomic {t}/in/x.inter", "--name 'a/b'", _inter("u1\ti1\t1")),
    Bad(
        "name-absolute",
        "import --data-root {d} --name {t}/abs --atomic {t}/in/x.inter",
        "--name '/",
        _inter("u1\ti1\t1"),
    ),
    Bad("name-dot", "import --data-root {d} --name . --atomic {t}/in/x.inter", "--name '.'", _inter("u1\ti1\t1")),
    Bad("name-hidden", "import --data-root {d} --name .x --atomic {t}/in/x.inter", "--name '.x'", _inter("u1\ti1\t1")),
    Bad("name-empty", "import --data-root {d} --name= --atomic {t}/in/x.inter", "--name ''", _inter("u1\ti1\t1")),
    Bad(
        "name-builtin",
        "import --data-root {d} --name OR --atomic {t}/in/x.inter",
        "built-in dataset 'OR'",
        _inter("u1\ti1\t1"),
    ),
    Bad(
        "name-builtin-case",
        "import --data-root {d} --name or-SAMPLE --atomic {t}/in/x.inter",
        "built-in dataset 'OR-sample'",
        _inter("u1\ti1\t1"),
    ),
    Bad(
        "name-existing-no-force",
        "import --data-root {d} --name mine --atomic {t}/second/synthetic.inter",
        "already holds a dataset built from other inputs (source_files: ",
        lambda t: (_imported(t), write_atomic(t / "second", users=20)),
    ),
    Bad(
        "name-link-to-dataset",
        "import --data-root {d} --name alias --atomic {t}/in/x.inter",
        "is a link",
        lambda t: (_alias(t), _inter("u1\ti1\t1")(t)),
    ),
    Bad(
        "inter-duplicate-header",
        IMPORT,
        "x.inter: line 1: column 'user_id' appears twice",
        _inter("u1\ti1\tu1", header="user_id:token\titem_id:token\tuser_id:token"),
    ),
    Bad(
        "inter-duplicate-typed-column",
        IMPORT,
        "column 'timestamp' appears twice",
        _inter("u1\ti1\t1\t2", header="user_id:token\titem_id:token\ttimestamp:float\ttimestamp:token"),
    ),
    Bad(
        "item-duplicate-header",
        f"{IMPORT} --item {{t}}/in/x.item",
        "x.item: line 1: column 'genre' appears twice",
        _item("item_id:token\tmovie_title:token_seq\tgenre:token_seq\tgenre:token_seq"),
    ),
    Bad("inter-short-line", IMPORT, "x.inter: line 3: expected 3 fields", _inter("u1\ti1\t1", "u1\ti2", "u2\ti1\t3")),
    Bad("inter-long-line", IMPORT, "x.inter: line 2: expected 3 fields", _inter("u1\ti1\t1\textra")),
    Bad("inter-blank-line", IMPORT, "x.inter: line 3: expected 3 fields", _inter("u1\ti1\t1", "", "u2\ti1\t3")),
    Bad(
        "inter-bad-timestamp",
        IMPORT,
        "x.inter: line 3: timestamp 'soon' is not a number",
        _inter("u1\ti1\t1", "u1\ti2\tsoon"),
    ),
    Bad("inter-nan-timestamp", IMPORT, "x.inter: line 2: timestamp 'nan' is not a number", _inter("u1\ti1\tnan")),
    Bad("inter-empty-user", IMPORT, "x.inter: line 3: empty user_id", _inter("u1\ti1\t1", "\ti2\t2")),
    Bad("inter-empty-item", IMPORT, "x.inter: line 2: empty item_id", _inter("u1\t \t1")),
    Bad(
        "inter-no-item-field",
        IMPORT,
        "header has no 'item_id' field",
        _inter("u1\t1", header="user_id:token\ttimestamp:float"),
    ),
    Bad("inter-empty-file", IMPORT, "empty file", lambda t: (_inter()(t), (t / "in" / "x.inter").write_text(""))),
    Bad("inter-not-utf8", IMPORT, "x.inter: line 2: not valid utf-8", _not_utf8),
    Bad(
        "item-missing-text-field",
        f"{IMPORT} --item {{t}}/in/x.item --text-fields movie_title,release_year,genre",
        "x.item: line 1: no field 'release_year' for the item text (fields found: item_id:token, "
        "movie_title:token_seq, year:token, genre:token_seq)",
        _item("item_id:token\tmovie_title:token_seq\tyear:token\tgenre:token_seq"),
    ),
    Bad(
        "text-fields-empty-name",
        f"{IMPORT} --item {{t}}/in/x.item --text-fields movie_title,,genre",
        "--text-fields 'movie_title,,genre': expected .item field names",
        _item("item_id:token\tmovie_title:token_seq\tyear:token\tgenre:token_seq"),
    ),
    Bad("text-fields-without-item", f"{IMPORT} --text-fields title", "--text-fields chooses fields of an .item file"),
    Bad(
        "field-map-missing-user",
        f"{IMPORT} --field-map user=reviewerID",
        "x.inter: line 1: header has no 'reviewerID' field for the user "
        "(fields found: user_id:token, item_id:token, timestamp:float)",
        _inter("u1\ti1\t1"),
    ),
    Bad(
        "field-map-missing-time",
        f"{IMPORT} --field-map time=unixReviewTime",
        "header has no 'unixReviewTime' field for the time",
        _inter("u1\ti1\t1"),
    ),
    Bad(
        "field-map-item-missing-in-item-file",
        f"{IMPORT} --item {{t}}/in/x.item --field-map item=asin",
        "x.item: line 1: header has no 'asin' field for the item (fields found: item_id:token, ",
        lambda t: (
            _item("item_id:token\ttitle:token_seq\tyear:token\tgenre:token_seq")(t),
            _inter("u1\ti1\t1", header="user_id:token\tasin:token\ttimestamp:float")(t),
        ),
    ),
    Bad(
        "field-map-malformed",
        f"{IMPORT} --field-map user:reviewerID",
        "--field-map 'user:reviewerID': expected ROLE=FIELD",
    ),
    Bad("field-map-unknown-role", f"{IMPORT} --field-map rating=stars", "each ROLE (user, item, time) at most once"),
    Bad(
        "field-map-with-benchmark",
        "import --data-root {d} --name x --benchmark {t} --field-map item=asin",
        "--field-map goes with --atomic",
    ),
    Bad(
        "inter-header-untyped",
        IMPORT,
        "x.inter: line 1: header field 2 'item_id' is not NAME:TYPE",
        _inter("u1\ti1\t1", header="user_id:token\titem_id\ttimestamp:float"),
    ),
    Bad(
        "item-header-unknown-type",
        f"{IMPORT} --item {{t}}/in/x.item",
        "x.item: line 1: header field 3 'year:int' is not NAME:TYPE with TYPE one of token, token_seq, float",
        _item("item_id:token\tmovie_title:token_seq\tyear:int\tgenre:token_seq"),
    ),
    Bad("inter-missing", "import --data-root {d} --name x --atomic {t}/nope.inter", "nope.inter: cannot open"),
    Bad("item-missing", f"{IMPORT} --item {{t}}/nope.item", "nope.item: cannot open", _inter("u1\ti1\t1")),
    Bad(
        "benchmark-dir-missing", "import --data-root {d} --name x --benchmark {t}/nowhere", "x.test.inter: cannot open"
    ),
    Bad(
        "neither-source",
        "import --data-root {d} --name x",
        "give exactly one of --atomic FILE.inter or --benchmark DIR",
    ),
    Bad(
        "item-without-atomic",
        "import --data-root {d} --name x --benchmark {t} --item {t}/x.item",
        "--item goes with --atomic",
    ),
    # export
    Bad(
        "export-unprepared",
        "export --data-root {d} --format recbole --dataset OR-sample --out {t}/out",
        "missing items.npy",
    ),
    Bad(
        "export-out-not-empty",
        "export --data-root {d} --format recbole --dataset OR-sample --out {t}/out",
        "/out: not empty (mine.txt); pass --force",
        lambda t, sample: (_prepared(t, sample), (t / "out").mkdir(), (t / "out" / "mine.txt").write_text("x\n")),
        needs_sample=True,
    ),
    Bad(
        "export-force-other-files",
        "export --data-root {d} --format recbole --dataset OR-sample --out {t}/out --force",
        "holds more than RecBole benchmark files (mine.txt)",
        lambda t, sample: (_prepared(t, sample), (t / "out").mkdir(), (t / "out" / "mine.txt").write_text("x\n")),
        needs_sample=True,
    ),
    Bad(
        "export-unknown-format",
        "export --data-root {d} --format csv --dataset OR-sample --out {t}/out",
        "invalid choice: 'csv'",
    ),
    # embed
    Bad(
        "batch-size-zero",
        f"{EMBED} --encoder random --batch-size 0",
        "--batch-size: expected an integer >= 1",
        _prepared,
        needs_sample=True,
    ),
    Bad("batch-size-negative", f"{EMBED} --encoder minilm --batch-size -8", "--batch-size: expected an integer >= 1"),
    Bad(
        "unknown-encoder",
        f"{EMBED} --encoder bert",
        "unknown encoder 'bert' (known: bert-base-uncased, bert-cls",
        _prepared,
        needs_sample=True,
    ),
    Bad("encoder-path", f"{EMBED} --encoder ../random", "unknown encoder '../random'", _prepared, needs_sample=True),
    Bad(
        "embed-dataset-path",
        "embed --data-root {d} --dataset ../processed/OR-sample --encoder random",
        "dataset name '../processed/OR-sample'",
    ),
    Bad("embed-unprepared", f"{EMBED} --encoder random", "missing items.npy"),
    # sample
    Bad(
        "sample-invoices-zero",
        "sample --dataset OR-sample --invoices 0 --out {t}/s.csv.gz",
        "--invoices: expected an integer >= 1",
    ),
    Bad(
        "sample-unknown-dataset",
        "sample --dataset ml-1m --invoices 5 --out {t}/s.csv.gz",
        "cannot be sampled (sampleable: OR",
    ),
    Bad("sample-not-gzip", "sample --dataset OR-sample --invoices 5 --out {t}/s.csv", "path ending in .csv.gz"),
]


@pytest.fixture
def sample_copy(request: pytest.FixtureRequest) -> Path | None:
    """The session's prepared OR-sample data root, only for rows that need one."""
    return request.getfixturevalue("sample_root") if request.node.callspec.params["row"].needs_sample else None


@pytest.mark.parametrize("row", BAD, ids=lambda r: r.name)
def test_bad_input_is_one_line_and_writes_nothing(row: Bad, sample_copy: Path | None, tmp_path: Path, capsys) -> None:
    if row.setup is not None:
        row.setup(tmp_path, sample_copy) if row.needs_sample else row.setup(tmp_path)
    before = snapshot(tmp_path)
    argv = [part.format(d=tmp_path / "data", r=tmp_path / "raw", t=tmp_path) for part in row.argv.split()]
    capsys.readouterr()

    code = main(argv)

    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("tedbench: error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert row.expected in err, err
    assert snapshot(tmp_path) == before


def test_bad_input_table_size() -> None:
    assert len(BAD) >= 40 and len({row.name for row in BAD}) == len(BAD)


def test_or_csv_duplicate_column_is_named(tmp_path: Path) -> None:
    """The CSV form is reachable only through pinned files, so its header check is tested on the reader."""
    from benchmark.data.readers import read_or_csv
    from benchmark.errors import TedbenchError

    path = tmp_path / "or.csv"
    path.write_text(",".join([*COLUMNS, "Country"]) + "\n", encoding="utf-8")
    with pytest.raises(TedbenchError, match="line 1: column 'Country' appears twice"):
        read_or_csv(path)


def test_force_replaces_and_identical_inputs_keep_the_folder(sample_root: Path, tmp_path: Path, capsys) -> None:
    """Identical inputs leave the published folder untouched (same inode); other inputs replace it only with --force."""
    root = tmp_path / "data"
    shutil.copytree(sample_root / "processed", root / "processed")
    folder = root / "processed" / "OR-sample"
    inode = folder.stat().st_ino
    argv = [
        "prepare",
        "--dataset",
        "OR-sample",
        "--offline",
        "--data-root",
        str(root),
        "--raw-root",
        str(tmp_path / "raw"),
    ]
    assert main(argv) == 0 and folder.stat().st_ino == inode
    assert main([*argv, "--k-core", "3", "--force"]) == 0
    assert json.loads((folder / "manifest.json").read_text())["k_core"] == 3
    assert orphans(root) == []


def test_kill_of_sample_then_rerun_equals_clean_run(tmp_path: Path) -> None:
    """`sample` writes one file anywhere: a kill leaves its staging file, the rerun clears only that one."""

    def args(out: Path) -> list[str]:
        return [
            "sample",
            "--dataset",
            "OR-sample",
            "--invoices",
            "40",
            "--items",
            "500",
            "--seed",
            "7",
            "--out",
            str(out),
            "--raw-root",
            str(tmp_path / "raw"),
        ]

    cli_ok(args(tmp_path / "clean" / "s.csv.gz"))
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "unrelated.txt").write_text("kept")
    kill_at(args(folder / "s.csv.gz"), "sample.before_publish", tmp_path / "pause")
    assert orphans(folder) and not (folder / "s.csv.gz").exists()
    cli_ok(args(folder / "s.csv.gz"))
    assert orphans(folder) == []
    assert sorted(p.name for p in folder.iterdir()) == ["s.csv.gz", "unrelated.txt"]
    assert (folder / "s.csv.gz").read_bytes() == (tmp_path / "clean" / "s.csv.gz").read_bytes()
