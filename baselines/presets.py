"""Where the RecBole-family presets come from: the RecBole release and UniSRec props the TedRec authors ran,
and the Transformer options their model yamls share (cited file:line)."""

from __future__ import annotations

RECBOLE = "RUCAIBox/RecBole@v1.2.0 recbole/properties/"  # the RecBole release the TedRec authors ran
UNISREC = "RUCAIBox/UniSRec@05aa5cb props/"  # the same lab's text versions of FDSA/S3-Rec, and UniSRec
RECBOLE_LR = (1e-3, RECBOLE + "overall.yaml:23")


def yaml_backbone(yaml: str, hidden_size: int) -> dict:
    """The Transformer options of a RecBole-style model yaml, each with its line (RecBole's SASRec, SASRecF,
    FDSA, S3Rec, FEARec yamls and UniSRec's props share the layout of lines 1-6), and RecBole's learning rate
    (none of these yamls sets one)."""
    return {
        "n_layers": (2, f"{yaml}:1"),
        "n_heads": (2, f"{yaml}:2"),
        "hidden_size": (hidden_size, f"{yaml}:3"),
        "inner_size": (256, f"{yaml}:4"),
        "hidden_dropout_prob": (0.5, f"{yaml}:5"),
        "attn_dropout_prob": (0.5, f"{yaml}:6"),
        "learning_rate": RECBOLE_LR,
    }


def recbole_backbone(model: str) -> dict:
    """RecBole 1.2.0's `model/<model>.yaml` Transformer options (hidden size 64)."""
    return yaml_backbone(f"{RECBOLE}model/{model}.yaml", 64)
