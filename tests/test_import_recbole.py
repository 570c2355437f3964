"""`tedbench import` of RecBole atomic files shaped otherwise than ml-1m: renamed id columns, chosen or default text
fields; the expected sequences and texts are written out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.data.readers import read_recbole_atomic
from benchmark.data.store import load_sequences
from benchmark.layout import processed_dir

# Amazon-Beauty-like: reviewer x product, five products each reviewed by all six reviewers (survives 5-core).
BEAUTY_SEQUENCES = {
    "A1": ["B1", "B2", "B3", "B4", "B5"],
    "A2": ["B2", "B3", "B4", "B5", "B1"],
    "A3": ["B3", "B4", "B5", "B1", "B2"],
    "A4": ["B4", "B5", "B1", "B2", "B3"],
    "A5": ["B5", "B1", "B2", "B3", "B4"],
    "A6": ["B5", "B4", "B3", "B2", "B1"],
}
BEAUTY_ITEM = (
    "asin:token\ttitle:token_seq\tcategories:token_seq\tbrand:token\tsales_type:token\tsales_rank:float\tprice:float\n"
    "B1\tRed Lipstick\tBeauty Makeup Lips\tMaybelline\tBeauty\t1203.0\t5.99\n"
    "B2\tNight Cream\tBeauty Skin Care\tOlay\tBeauty\t54.0\t19.0\n"
    "B3\tRose Blush\tBeauty Makeup Face\t\tBeauty\t88.0\t12.5\n"
    "B4\tHair Oil.\tBeauty Hair\tBrand X\tBeauty\t7.0\t3.0\n"
    "B9\tUnused\tBeauty\tNobody\tBeauty\t1.0\t1.0\n"
)  # B5 has no row: its text is ""
BEAUTY_DEFAULT_FIELDS = ["title", "categories", "brand", "sales_type", "sales_rank", "price"]
BEAUTY_DEFAULT_TEXT = {
    "B1": "Red Lipstick Beauty Makeup Lips Maybelline Beauty 1203.0 5.99.",
    "B2": "Night Cream Beauty Skin Care Olay Beauty 54.0 19.0.",
    "B3": "Rose Blush Beauty Makeup Face  Beauty 88.0 12.5.",
    "B4": "Hair Oil. Beauty Hair Brand X Beauty 7.0 3.0.",
    "B5": "",
}


def write_beauty(folder: Path) -> tuple[Path, Path]:
    """`Beauty.inter` (reviewerID, asin, rating, unixReviewTime; rows newest first) and `Beauty.item`."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["reviewerID:token\tasin:token\trating:float\tunixReviewTime:float"]
    for step in reversed(range(5)):
        for number, (user, items) in enumerate(BEAUTY_SEQUENCES.items(), start=1):
            lines.append(f"{user}\t{items[step]}\t5.0\t{1_400_000_000 + 1000 * step + number}")
    inter, item = folder / "Beauty.inter", folder / "Beauty.item"
    inter.write_text("\n".join(lines) + "\n", encoding="utf-8")
    item.write_text(BEAUTY_ITEM, encoding="utf-8")
    return inter, item


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def texts_and_sequences(data_root: Path, name: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(item token -> text, user token -> item tokens in order) of a processed dataset."""
    seqs = load_sequences(processed_dir(data_root, name))
    tokens = ["[PAD]", *seqs.item_tokens]
    sequences = {
        user: [tokens[i] for i in seqs.items[start:end]]
        for user, start, end in zip(seqs.user_tokens, seqs.offsets[:-1], seqs.offsets[1:])
    }
    return dict(zip(seqs.item_tokens, seqs.item_text)), sequences


def manifest(data_root: Path, name: str) -> dict:
    return json.loads((processed_dir(data_root, name) / "manifest.json").read_text(encoding="utf-8"))


def test_amazon_like_import_maps_fields_and_takes_every_text_field(tmp_path: Path, capsys) -> None:
    inter, item = write_beauty(tmp_path / "in")
    data = tmp_path / "data"
    field_map = "user=reviewerID,item=asin,time=unixReviewTime"
    args = ["import", "--name", "Beauty", "--atomic", str(inter), "--item", str(item), "--field-map", field_map]
    code, out, err = run([*args, "--data-root", str(data)], capsys)

    assert code == 0, err
    assert json.loads(out)["users"] == 6 and json.loads(out)["items"] == 5
    texts, sequences = texts_and_sequences(data, "Beauty")
    assert sequences == BEAUTY_SEQUENCES  # time order, not the file's newest-first order
    assert texts == BEAUTY_DEFAULT_TEXT
    recorded = manifest(data, "Beauty")
    assert recorded["text_fields"] == BEAUTY_DEFAULT_FIELDS
    assert recorded["field_map"] == {"user": "reviewerID", "item": "asin", "time": "unixReviewTime"}
    assert "Beauty.item fields title, categories, brand, sales_type, sales_rank, price (default" in err


def test_chosen_text_fields_in_the_given_order(tmp_path: Path, capsys) -> None:
    inter, item = write_beauty(tmp_path / "in")
    data = tmp_path / "data"
    args = ["import", "--name", "B", "--atomic", str(inter), "--item", str(item), "--data-root", str(data)]
    mapped = [*args, "--field-map", "user=reviewerID,item=asin,time=unixReviewTime"]
    code, _, err = run([*mapped, "--text-fields", "brand,title"], capsys)

    assert code == 0, err
    texts, _ = texts_and_sequences(data, "B")
    assert texts == {
        "B1": "Maybelline Red Lipstick.",
        "B2": "Olay Night Cream.",
        "B3": " Rose Blush.",  # the empty brand leaves its space
        "B4": "Brand X Hair Oil.",
        "B5": "",
    }
    assert manifest(data, "B")["text_fields"] == ["brand", "title"]
    assert "fields brand, title (as chosen)" in err

    code, _, err = run([*mapped, "--text-fields", "title,brand", "--force"], capsys)
    assert code == 0, err
    texts, _ = texts_and_sequences(data, "B")
    assert (
        texts["B3"] == "Rose Blush." and texts["B4"] == "Hair Oil. Brand X."
    )  # a trailing empty value leaves no space


ML1M_LIKE_ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq\tvector:float_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\t0.1 0.2\n"
    "2\tJumanji\t1995\tAdventure Children's Fantasy\t0.3 0.4\n"
    "3\tAssociate, The (L'Associe)(1982)\t\tComedy\t0.5 0.6\n"
)


def test_ml1m_like_default_fields_skip_float_seq_and_give_the_ml1m_text(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    rows = [f"u{user}\t{item}\t{user * 10 + step}" for user in range(5) for step, item in enumerate((1, 2, 3, 1, 2))]
    (folder / "m.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "\n".join(rows) + "\n")
    (folder / "m.item").write_text(ML1M_LIKE_ITEM, encoding="utf-8")
    data = tmp_path / "data"
    args = ["import", "--name", "m", "--atomic", str(folder / "m.inter"), "--item", str(folder / "m.item")]
    code, _, err = run([*args, "--data-root", str(data)], capsys)

    assert code == 0, err
    texts, sequences = texts_and_sequences(data, "m")
    expected = {
        "1": "Toy Story 1995 Animation Children's Comedy.",
        "2": "Jumanji 1995 Adventure Children's Fantasy.",
        "3": "Associate, The (L'Associe)(1982)  Comedy.",  # the empty year leaves two spaces, as TedRec's text
    }
    assert texts == expected
    assert read_recbole_atomic(folder / "m.inter", folder / "m.item").item_text == expected  # ml-1m's rule
    assert manifest(data, "m")["text_fields"] == ["movie_title", "release_year", "genre"]
    assert sequences["u0"] == ["1", "2", "3", "1", "2"]
