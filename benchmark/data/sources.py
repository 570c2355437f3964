"""The paper's five datasets: where their files come from, their checksums, licences and readers.

A dataset has one or more *forms* (the upstream release, or an equivalent re-packaging such as
RecBole atomic files). Each form lists its files with a checksum; a form is usable when all its
files are present in the mirror folder or the download cache and match their checksums. Forms
are tried in order; the first complete one is read. A *bundled* file ships inside this package
(`BUNDLED_DIR`), so its dataset needs neither a mirror nor the internet.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.data import readers
from benchmark.data.raw import RawInteractions
from benchmark.errors import TedbenchError

#: Data files shipped inside the package (see NOTICE for their attribution).
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


@dataclass(frozen=True)
class SourceFile:
    """One file of a form: its path relative to the mirror root, upstream URL and checksum.

    `digest` is "sha256:<hex>" or "md5:<hex>"; None marks an upstream file whose bytes have not
    been pinned yet (fetching it requires `--allow-unpinned` and prints the digest to pin).
    A `bundled` file's path is relative to `BUNDLED_DIR` instead of the mirror root.
    """

    path: str
    url: str | None
    digest: str | None
    bundled: bool = False


@dataclass(frozen=True)
class Form:
    name: str
    files: tuple[SourceFile, ...]
    read: Callable[[list[Path]], RawInteractions]
    description: str


@dataclass(frozen=True)
class DatasetSource:
    name: str
    title: str
    licence: str
    attribution: str
    forms: tuple[Form, ...]
    paper_counts: dict[str, float] = field(default_factory=dict)
    redistributable: bool = False


def _read_or_uci_zip(paths: list[Path]) -> RawInteractions:
    """UCI's `online+retail.zip` holds `Online Retail.xlsx`."""
    try:
        with zipfile.ZipFile(paths[0]) as archive, tempfile.TemporaryDirectory() as tmp:
            archive.extract("Online Retail.xlsx", tmp)
            return readers.read_or_xlsx(Path(tmp) / "Online Retail.xlsx")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise TedbenchError(f"{paths[0]}: not a valid UCI Online Retail archive ({exc})") from None


# The partial Office release staged on the development machines: valid/test benchmark files only.
OFFICE_PARTIAL = Form(
    name="partial-release",
    files=(
        SourceFile(
            "raw/Office/Office.valid.inter",
            None,
            "sha256:60ebdcdcb505ac6df6fb715d6b56b09da8064b59cfb6979a11cbdf34bd1a2543",
        ),
        SourceFile(
            "raw/Office/Office.test.inter",
            None,
            "sha256:6bff29e82cfee4f5a6d7375c557c986f718f6937968b5b44357a2de8b8e3b30d",
        ),
        SourceFile(
            "raw/Office/Office.item2index",
            None,
            "sha256:c07d514997f21e64531263db066cb0d8b3c90281a724060ffabff816d6be8fe4",
        ),
        SourceFile(
            "raw/Office/Office.user2index",
            None,
            "sha256:c60b7bb71209c02eac69fce7708b46b31048f1027cd826ae1c5bcf428b6f1c1d",
        ),
        SourceFile(
            "raw/Office/IDs_Text_test.json",
            None,
            "sha256:d908867c9f27b208e67a04d995ff73770652e8f41f30dc455aaf5248986fd27b",
        ),
        SourceFile(
            "raw/Office/Images_Text_test.json",
            None,
            "sha256:14e6e078f43a938f7069983526ce46d2a47a6fd537e84e2b44016ca82019f768",
        ),
    ),
    read=lambda p: readers.read_office_mirror(p[0].parent),
    description="processed valid/test files without the train file; text for ~17% of items (partial)",
)


def _amazon(category: str, short: str, counts: dict[str, float], extra_forms: tuple[Form, ...] = ()) -> DatasetSource:
    base = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2"
    return DatasetSource(
        name=short,
        title=f"Amazon Reviews 2018, {category}",
        licence="Amazon Review Data (2018), J. McAuley, UCSD: research use only; do not redistribute",
        attribution="Jianmo Ni, Jiacheng Li, Julian McAuley. Justifying recommendations using "
        "distantly-labeled reviews and fine-grained aspects. EMNLP 2019.",
        forms=(
            Form(
                name="upstream",
                files=(
                    SourceFile(f"raw/{short}/{category}.csv", f"{base}/categoryFilesSmall/{category}.csv", None),
                    SourceFile(
                        f"raw/{short}/meta_{category}.json.gz", f"{base}/metaFiles2/meta_{category}.json.gz", None
                    ),
                ),
                read=lambda p: readers.read_amazon2018(p[0], p[1]),
                description="ratings-only CSV (item,user,rating,time) + metadata JSON lines",
            ),
            Form(
                name="recbole-benchmark",
                files=tuple(
                    SourceFile(f"benchmark/{short}/{short}.{part}.inter", None, None)
                    for part in ("train", "valid", "test")
                ),
                read=lambda p: readers.read_recbole_benchmark(p[0].parent, short),
                description="TedRec/UniSRec-processed RecBole benchmark files",
            ),
        )
        + extra_forms,
        paper_counts=counts,
    )


OR_LICENCE = "CC BY 4.0 (UCI Machine Learning Repository, dataset 352)"
OR_ATTRIBUTION = (
    "Daqing Chen, Sai Liang Sain, and Kun Guo. Data mining for the online retail industry: A case "
    "study of RFM model-based customer segmentation using data mining. Journal of Database "
    "Marketing and Customer Strategy Management 19(3):197-208, 2012. "
    "Data: UCI Machine Learning Repository, https://doi.org/10.24432/C5BW33."
)

# The bundled sample of OR (see NOTICE): rebuild it with this command from the full CSV form.
OR_SAMPLE_COMMAND = (
    "tedbench sample --dataset OR --invoices 3000 --items 2400 --seed 2020 "
    "--out benchmark/data/bundled/OR-sample.csv.gz"
)

SOURCES: dict[str, DatasetSource] = {
    s.name: s
    for s in (
        DatasetSource(
            name="ml-1m",
            title="MovieLens 1M",
            licence="GroupLens usage licence: research use, cite, no redistribution, no commercial use",
            attribution="F. Maxwell Harper and Joseph A. Konstan. The MovieLens Datasets: History and "
            "Context. ACM TiiS 5(4), 2015.",
            forms=(
                Form(
                    name="upstream",
                    files=(
                        SourceFile(
                            "raw/ml-1m/ml-1m.zip",
                            "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
                            "md5:c4d9eecfca2ab87c1945afe126590906",
                        ),
                    ),
                    read=lambda p: readers.read_ml1m_zip(p[0]),
                    description="GroupLens ml-1m.zip (ratings.dat with timestamps, movies.dat)",
                ),
                Form(
                    name="recbole-atomic",
                    files=(
                        SourceFile(
                            "atomic/ml-1m/ml-1m.inter",
                            None,
                            "sha256:8f75a2103fce3491e4f8528c1ef81f189455606d58eada4fe09e1f59002f0121",
                        ),
                        SourceFile(
                            "atomic/ml-1m/ml-1m.item",
                            None,
                            "sha256:a5c1523493ccafe9d4a3d067883adeaae1006ffb3cba795a42f788d5cd7f0240",
                        ),
                    ),
                    read=lambda p: readers.read_recbole_atomic(p[0], p[1]),
                    description="RecBole atomic files in per-user time order (no timestamp column)",
                ),
            ),
            paper_counts={"users": 6040, "items": 3416, "interactions": 993571, "sparsity": 95.1867},
        ),
        DatasetSource(
            name="OR",
            title="UCI Online Retail",
            licence=OR_LICENCE,
            attribution=OR_ATTRIBUTION,
            forms=(
                Form(
                    name="upstream",
                    files=(
                        SourceFile(
                            "raw/OR/online+retail.zip",
                            "https://archive.ics.uci.edu/static/public/352/online+retail.zip",
                            None,
                        ),
                    ),
                    read=_read_or_uci_zip,
                    description="UCI zip holding Online Retail.xlsx",
                ),
                Form(
                    name="csv",
                    files=(
                        SourceFile(
                            "derived/OR/data-utf8.csv.gz",
                            None,
                            "sha256:7d059fc6038bc5027d7dd368314e68e0dd6789f9bbfe095dc164e1cdd76c0a69",
                        ),
                    ),
                    read=lambda p: readers.read_or_csv(p[0]),
                    description="CSV export in the layout TedRec's process_or.py reads",
                ),
                Form(
                    name="rda",
                    files=(
                        SourceFile(
                            "raw/OR/onlineretail.rda",
                            None,
                            "sha256:d686c7ec387fdc64fde3a5b6f1c31d43751735f4053f34c92e677beacf5e0664",
                        ),
                    ),
                    read=lambda p: readers.read_or_rda(p[0]),
                    description="R data file of CRAN package onlineretail 0.1.2",
                ),
            ),
            paper_counts={"users": 16520, "items": 3469, "interactions": 503386, "sparsity": 99.1219},
            redistributable=True,
        ),
        DatasetSource(
            name="OR-sample",
            title="UCI Online Retail, bundled sample",
            licence=OR_LICENCE,
            attribution=OR_ATTRIBUTION + " Sample of 3000 invoices and 2400 stock codes drawn by "
            f"`{OR_SAMPLE_COMMAND}`.",
            forms=(
                Form(
                    name="bundled",
                    files=(
                        SourceFile(
                            "OR-sample.csv.gz",
                            None,
                            "sha256:d376b34f6c83b20fec23d9aa702a8d0302c930586017b0f09fe929ddbf02281e",
                            bundled=True,
                        ),
                    ),
                    read=lambda p: readers.read_or_csv(p[0]),
                    description="rows of a seeded invoice and stock-code sample of OR's csv form, "
                    "shipped in the package",
                ),
            ),
            redistributable=True,
        ),
        _amazon(
            "Office_Products",
            "Office",
            {"users": 87346, "items": 25986, "interactions": 597491, "sparsity": 99.9737},
            (OFFICE_PARTIAL,),
        ),
        _amazon(
            "Grocery_and_Gourmet_Food",
            "Food",
            {"users": 115349, "items": 39670, "interactions": 912064, "sparsity": 99.9801},
        ),
        _amazon(
            "Movies_and_TV", "Movies", {"users": 281700, "items": 59203, "interactions": 2945031, "sparsity": 99.9823}
        ),
    )
}


def get_source(name: str) -> DatasetSource:
    if name not in SOURCES:
        raise TedbenchError(f"unknown dataset {name!r} (known: {', '.join(SOURCES)})")
    return SOURCES[name]
