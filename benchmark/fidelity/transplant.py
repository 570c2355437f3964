"""Weight transplant between tedbench's model and a RecBole-based reference, both ways, exactly.

Each side's trained weights are mapped into the other side's model and evaluated there with that side's own
full-sort evaluation (tedbench's `full_sort_ranks` + `summarize`; RecBole's `Trainer.evaluate`) on valid and
test: the metrics must equal those of the weights' own side, and the full-sort scores must agree within float
tolerance. `verify --transplant` writes the table `STEM.transplant.md`.

Name map (reference name -> tedbench name), for the official TedRec (RUCAIBox/TedRec `tedrec.py`):
  item_embedding.weight                   -> item_embedding.weight (rows reordered: RecBole's ids -> tedbench's)
  position_embedding.weight, LayerNorm.*  -> embedding.position_embedding.weight, embedding.layer_norm.*
  trm_encoder.layer.N.multi_head_attention.{query,key,value,dense}.* -> encoder.layers.N.attention.*
  trm_encoder.layer.N.multi_head_attention.LayerNorm.*              -> encoder.layers.N.attention.layer_norm.*
  trm_encoder.layer.N.feed_forward.{dense_1,dense_2}.*              -> encoder.layers.N.feed_forward.*
  trm_encoder.layer.N.feed_forward.LayerNorm.*                      -> encoder.layers.N.feed_forward.layer_norm.*
  complex_weight                          -> fusion.id_filter.complex_weight
  item_gating.*, fusion_gating.*          -> fusion.id_gate.*, fusion.fusion_gate.*
  moe_adaptor.w_gate, moe_adaptor.w_noise -> adaptor.w_gate, adaptor.w_noise
  moe_adaptor.experts.K.lin.weight [out, in] -> adaptor.experts[K] [in, out] (transposed)
  moe_adaptor.experts.K.bias [1, L, in]      -> adaptor.bias[K] [L, in]
  plm_embedding.weight (frozen item text) is not transplanted: it must equal tedbench's item-text matrix.
For the official UniSRec (RUCAIBox/UniSRec `unisrec.py`, `transductive_ft`): the same Transformer, embedding,
gate and expert names; its whitening bias moe_adaptor.experts.K.bias [in] -> adaptor.bias[K] [1, in].
For RecBole 1.2.1's SASRec: the item embedding and Transformer names above, nothing else; for its FEARec:
`FEAREC_RULES` (the hybrid attention's query/key/value and LayerNorm, the feed-forward, the embedding).
Any name left unmapped on either side, or a shape that differs other than by dimensions of size 1, is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmark.engine.evaluate import full_sort_ranks
from benchmark.errors import TedbenchError
from benchmark.fsutil import write_text
from benchmark.metrics import summarize
from benchmark.registry import get_model

# RecBole's Transformer names -> tedbench's (SASRec family), applied in order, first match wins.
TRANSFORMER_RULES = [
    (r"^trm_encoder\.layer\.(\d+)\.multi_head_attention\.LayerNorm\.", r"encoder.layers.\1.attention.layer_norm."),
    (r"^trm_encoder\.layer\.(\d+)\.multi_head_attention\.", r"encoder.layers.\1.attention."),
    (r"^trm_encoder\.layer\.(\d+)\.feed_forward\.LayerNorm\.", r"encoder.layers.\1.feed_forward.layer_norm."),
    (r"^trm_encoder\.layer\.(\d+)\.feed_forward\.", r"encoder.layers.\1.feed_forward."),
    (r"^position_embedding\.", "embedding.position_embedding."),
    (r"^LayerNorm\.", "embedding.layer_norm."),
]
# RecBole 1.2.1's FEARec names -> tedbench's (its hybrid attention in place of the Transformer's attention)
FEAREC_RULES = [
    (r"^item_encoder\.layer\.(\d+)\.hybrid_attention\.(query|key|value)_layer\.", r"layers.\1.attention.\2."),
    (r"^item_encoder\.layer\.(\d+)\.hybrid_attention\.LayerNorm\.", r"layers.\1.attention.layer_norm."),
    (r"^item_encoder\.layer\.(\d+)\.hybrid_attention\.", r"layers.\1.attention."),
    (r"^item_encoder\.layer\.(\d+)\.feed_forward\.LayerNorm\.", r"layers.\1.feed_forward.layer_norm."),
    (r"^item_encoder\.layer\.(\d+)\.feed_forward\.", r"layers.\1.feed_forward."),
    (r"^position_embedding\.", "embedding.position_embedding."),
    (r"^LayerNorm\.", "embedding.layer_norm."),
]
METRIC_DECIMALS = 12  # RecBole rounds its metrics; tedbench's are compared rounded alike
SCORE_ATOL = 1e-5


@dataclass(frozen=True)
class NameMap:
    """How a reference's state dict corresponds to tedbench's."""

    rules: list[tuple[str, str]]  # reference name pattern -> tedbench name (whole tensors)
    stacked: list[tuple[str, str, bool]]  # reference per-expert pattern (group 1: expert) -> stacked tedbench tensor,
    #                                       transposed? (the slice may differ from the reference by size-1 dimensions)
    item_rows: tuple[str, ...]  # tedbench tensors whose rows are item ids
    inputs: tuple[str, ...]  # frozen reference inputs checked equal to tedbench's item text, not transplanted


NAME_MAPS = {
    "SASRec": NameMap(rules=TRANSFORMER_RULES, stacked=[], item_rows=("item_embedding.weight",), inputs=()),
    "FEARec": NameMap(rules=FEAREC_RULES, stacked=[], item_rows=("item_embedding.weight",), inputs=()),
    "TedRec": NameMap(
        rules=TRANSFORMER_RULES
        + [
            (r"^complex_weight$", "fusion.id_filter.complex_weight"),
            (r"^item_gating\.", "fusion.id_gate."),
            (r"^fusion_gating\.", "fusion.fusion_gate."),
            (r"^moe_adaptor\.(w_gate|w_noise)$", r"adaptor.\1"),
        ],
        stacked=[
            (r"^moe_adaptor\.experts\.(\d+)\.lin\.weight$", "adaptor.experts", True),
            (r"^moe_adaptor\.experts\.(\d+)\.bias$", "adaptor.bias", False),
        ],
        item_rows=("item_embedding.weight",),
        inputs=("plm_embedding.weight",),
    ),
    "UniSRec": NameMap(
        rules=TRANSFORMER_RULES + [(r"^moe_adaptor\.(w_gate|w_noise)$", r"adaptor.\1")],
        stacked=[
            (r"^moe_adaptor\.experts\.(\d+)\.lin\.weight$", "adaptor.experts", True),
            (r"^moe_adaptor\.experts\.(\d+)\.bias$", "adaptor.bias", False),
        ],
        item_rows=("item_embedding.weight",),
        inputs=("plm_embedding.weight",),
    ),
}


def renamed(name: str, rules: list[tuple[str, str]]) -> str:
    for pattern, replacement in rules:
        if re.match(pattern, name):
            return re.sub(pattern, replacement, name)
    return name


def name_map(model: str) -> NameMap:
    if model not in NAME_MAPS:
        raise TedbenchError(f"--model {model}: the weight transplant supports {', '.join(NAME_MAPS)}")
    return NAME_MAPS[model]


def aliases(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Names that repeat an earlier name's tensor (one module registered twice, e.g. RecBole FEARec's
    `item_encoder.layer_ramp`, its last layer again) -> that earlier name."""
    first: dict[tuple, str] = {}
    out = {}
    for name, tensor in state.items():
        key = (tensor.data_ptr(), tensor.shape, tensor.stride(), tensor.dtype)
        if tensor.numel() and key in first:
            out[name] = first[key]
        else:
            first.setdefault(key, name)
    return out


def correspondence(
    names: NameMap, reference: dict[str, torch.Tensor], repeated: dict[str, str]
) -> dict[str, tuple[str, int | None, bool]]:
    """Reference name -> (tedbench name, expert index or None, transposed) for every transplanted tensor; the
    reference's frozen inputs and its `repeated` names (`aliases`) are not transplanted."""
    out = {}
    for name in reference:
        if name in names.inputs or name in repeated:
            continue
        for pattern, target, transposed in names.stacked:
            match = re.match(pattern, name)
            if match:
                out[name] = (target, int(match.group(1)), transposed)
                break
        else:
            out[name] = (renamed(name, names.rules), None, False)
    return out


def _check_names(pairs: dict[str, tuple[str, int | None, bool]], ours: dict[str, torch.Tensor]) -> None:
    mapped = {target for target, _, _ in pairs.values()}
    unmapped_ref = sorted(name for name, (target, _, _) in pairs.items() if target not in ours)
    unmapped_ours = sorted(set(ours) - mapped)
    if unmapped_ref or unmapped_ours:
        raise TedbenchError(f"weight transplant: unmapped names: reference {unmapped_ref}, tedbench {unmapped_ours}")


def _slice(tensor: torch.Tensor, expert: int | None, transposed: bool) -> torch.Tensor:
    """The part of a tedbench tensor that one reference tensor holds (a view)."""
    if expert is None:
        return tensor
    part = tensor[expert]
    return part.t() if transposed else part


def _fit(name: str, got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """`got` in `want`'s shape, if the two differ at most by dimensions of size 1; else an error naming `name`."""
    if got.shape == want.shape:
        return got
    if [d for d in got.shape if d != 1] == [d for d in want.shape if d != 1]:
        return got.reshape(want.shape)
    raise TedbenchError(f"weight transplant: {name}: shape {tuple(got.shape)} vs {tuple(want.shape)}")


def check_inputs(
    names: NameMap, reference: dict[str, torch.Tensor], item_text: torch.Tensor, order: torch.Tensor
) -> None:
    """The reference's frozen inputs equal tedbench's item text (rows in the reference's id order)."""
    for name in names.inputs:
        expected = item_text[order].to(reference[name].dtype)
        if reference[name].shape != expected.shape or not torch.equal(reference[name].cpu(), expected.cpu()):
            raise TedbenchError(f"weight transplant: the reference's {name} differs from tedbench's item text")


def to_reference(
    names: NameMap, ours: dict[str, torch.Tensor], template: dict[str, torch.Tensor], order: torch.Tensor
) -> dict[str, torch.Tensor]:
    """tedbench's state dict as the reference's (its frozen inputs kept from `template`); `order[i]` is the tedbench
    id of the reference's item id i."""
    repeated = aliases(template)
    pairs = correspondence(names, template, repeated)
    _check_names(pairs, ours)
    out = {name: template[name] for name in names.inputs}
    for name, (target, expert, transposed) in pairs.items():
        value = ours[target][order] if target in names.item_rows else ours[target]
        out[name] = _fit(name, _slice(value, expert, transposed), template[name]).clone()
    for alias, name in repeated.items():
        out[alias] = out[name]
    return {name: out[name] for name in template}


def to_tedbench(
    names: NameMap, reference: dict[str, torch.Tensor], template: dict[str, torch.Tensor], order: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The reference's state dict as tedbench's (the inverse of `to_reference`)."""
    pairs = correspondence(names, reference, aliases(reference))
    _check_names(pairs, template)
    out = {name: torch.empty_like(value) for name, value in template.items()}
    for name, (target, expert, transposed) in pairs.items():
        part = _slice(out[target], expert, transposed)
        value = _fit(name, reference[name], part)
        if target in names.item_rows:
            out[target][order] = value.to(out[target].dtype)
        else:
            part.copy_(value)
    return out


# -- evaluation on both sides ------------------------------------------------------------------------
def item_order(dataset) -> torch.Tensor:
    """tedbench's id of each of RecBole's item ids (0: padding)."""
    return torch.tensor([0] + [int(token) for token in dataset.field2id_token["item_id"][1:]])


def tedbench_side(model, splits) -> dict[str, dict[str, float]]:
    return {split: summarize(full_sort_ranks(model, splits, getattr(splits, split))) for split in ("valid", "test")}


def reference_side(trainer, loaders: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {
        split: {
            key.lower(): float(value)
            for key, value in trainer.evaluate(loader, load_best_model=False, show_progress=False).items()
        }
        for split, loader in loaders.items()
    }


@torch.no_grad()
def score_gap(ours, reference, splits, order: torch.Tensor) -> float:
    """Largest |score difference| over real items on every valid and test row (tedbench's rows, mapped)."""
    from recbole.data.interaction import Interaction

    ours.eval(), reference.eval()
    to_reference_id = torch.empty_like(order)
    to_reference_id[order] = torch.arange(len(order))
    device = next(reference.parameters()).device
    gap = 0.0
    for split in ("valid", "test"):
        seq, length, _ = (t.to(device) for t in splits.batch(getattr(splits, split)))
        rows = Interaction({"item_id_list": to_reference_id.to(device)[seq], "item_length": length})
        theirs = reference.full_sort_predict(rows)
        mine = ours.full_sort_scores(seq, length)[:, order.to(device)]
        gap = max(gap, float((mine[:, 1:] - theirs[:, 1:]).abs().max()))
    return gap


def rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {key: round(value, METRIC_DECIMALS) for key, value in metrics.items()}


def transplant(
    setup, seed: int, ours_state: dict[str, torch.Tensor], reference_state: dict[str, torch.Tensor]
) -> list[dict[str, Any]]:
    """Both ways for one seed: rows (weights, evaluated by, split, metrics, equal, score gap)."""
    import recbole.trainer.trainer as recbole_trainer

    from benchmark.fidelity.verify import reference_data

    names = name_map(setup.model)
    settings = {**setup.settings(seed), "metric_decimal_place": METRIC_DECIMALS}
    config, train_data, valid_data, test_data = reference_data(setup.reference, settings, setup.splits)
    theirs = setup.reference.model_class(config, train_data.dataset).to(config["device"])
    ours = get_model(setup.model).cls(setup.model_config, setup.info).to(setup.device)
    order, splits = item_order(train_data.dataset), setup.splits.to(setup.device)
    template_ours, template_theirs = ours.state_dict(), theirs.state_dict()
    check_inputs(names, template_theirs, setup.info.item_text, order)
    trainer = recbole_trainer.Trainer(config, theirs)
    loaders = {"valid": valid_data, "test": test_data}
    rows = []
    for weights, state in (("tedbench", ours_state), (setup.reference.key, reference_state)):
        if weights == "tedbench":
            ours.load_state_dict(state)
            theirs.load_state_dict(to_reference(names, state, template_theirs, order))
        else:
            theirs.load_state_dict(state)
            ours.load_state_dict(to_tedbench(names, state, template_ours, order))
        own, other = (tedbench_side(ours, splits), reference_side(trainer, loaders))
        if weights != "tedbench":
            own, other = other, own
        gap = score_gap(ours, theirs, splits, order)
        for split in ("valid", "test"):
            equal = rounded(own[split]) == rounded(other[split])
            rows.append(
                {
                    "seed": seed,
                    "weights": weights,
                    "split": split,
                    "own": own[split],
                    "other": other[split],
                    "equal": equal,
                    "score_gap": gap,
                }
            )
    return rows


def transplant_markdown(header: dict[str, Any], rows: list[dict[str, Any]], label: str) -> str:
    from benchmark.fidelity.verify import METRICS

    lines = [f"# Weight transplant: {header['model']} on {header['dataset']}, tedbench ⇄ {label}", ""]
    lines += [f"- {name}: {value}" for name, value in header.items()]
    equal = all(row["equal"] for row in rows)
    gap = max(row["score_gap"] for row in rows)
    summary = (
        f"**{'EXACT' if equal else 'DIFFERENT'}: every metric {'equal' if equal else 'not equal'} across "
        f"the two evaluations (rounded to {METRIC_DECIMALS} decimals); largest full-sort score difference "
        f"{gap:.2e}.**"
    )
    lines += [
        "",
        summary,
        "",
        (
            "Each side's trained weights, evaluated by its own full-sort evaluation and, transplanted, by the "
            "other side's (the gap is over every valid and test row and every real item)."
        ),
        "",
        f"| seed | weights | split | evaluated by | {' | '.join(METRICS)} | equal |",
        "|---|---|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for row in rows:
        for who, key in (("own side", "own"), ("other side", "other")):
            values = " | ".join(f"{row[key][m]:.6f}" for m in METRICS)
            lines.append(
                f"| {row['seed']} | {row['weights']} | {row['split']} | {who} | {values} | "
                f"{'yes' if row['equal'] else 'NO'} |"
            )
    lines.append("")
    return "\n".join(lines)


def write_transplant(out: Path, stem: str, header: dict[str, Any], rows: list[dict[str, Any]], label: str) -> dict:
    path = out / f"{stem}.transplant.md"
    write_text(path, transplant_markdown(header, rows, label))
    return {
        "transplant": "exact" if all(r["equal"] for r in rows) else "different",
        "score_gap": max(r["score_gap"] for r in rows),
        "markdown": str(path),
    }
