"""Dataset readers: each parses one source form into ``RawInteractions`` (no filtering or splitting)."""

from benchmark.data.readers.amazon import clean_text, read_amazon2018
from benchmark.data.readers.movielens import ML1M_TEXT_FIELDS, read_ml1m_zip
from benchmark.data.readers.online_retail import read_or_csv, read_or_rda, read_or_xlsx
from benchmark.data.readers.recbole_atomic import (
    Columns,
    field_list,
    read_header,
    read_item_file,
    read_recbole_atomic,
    text_fields_for,
)
from benchmark.data.readers.recbole_benchmark import read_office_mirror, read_recbole_benchmark

__all__ = [
    "Columns",
    "ML1M_TEXT_FIELDS",
    "clean_text",
    "field_list",
    "read_amazon2018",
    "read_ml1m_zip",
    "read_office_mirror",
    "read_or_csv",
    "read_or_rda",
    "read_header",
    "read_item_file",
    "read_or_xlsx",
    "read_recbole_atomic",
    "read_recbole_benchmark",
    "text_fields_for",
]
