"""tedbench: a benchmark and reproducibility suite for sequential recommendation with item text."""

__version__ = "0.1.0"
