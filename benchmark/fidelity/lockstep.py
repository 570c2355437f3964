"""Lockstep training against a RecBole-based reference: same start, same batches, same noise, both trainers.

Both sides start from the same weights (tedbench's initialisation, transplanted), take the same training rows
in the same order (one seeded shuffle of tedbench's training rows, mapped to the reference's ids), draw the same
router noise (the global generator re-seeded before each side's step; each side draws one `randn_like` of the
same shape per forward) and run with every dropout probability at 0, since the two sides draw dropout masks
differently. Each side steps with its own trainer: tedbench's `Trainer.step`, RecBole's `Trainer._train_epoch`
over a one-batch list (its optimizer, zero_grad, backward, clipping and step). If the two implementations
train alike, the per-step losses and the weights after the last step agree to float tolerance; any difference
in the loss, the gradients, the optimizer or the data shows at the step where it first enters.

`verify --lockstep STEPS` writes the table `STEM.lockstep.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from benchmark.engine.trainer import Trainer
from benchmark.fidelity.transplant import (
    check_inputs,
    item_order,
    name_map,
    reference_side,
    tedbench_side,
    to_reference,
    to_tedbench,
)
from benchmark.fsutil import write_text
from benchmark.log import logger
from benchmark.registry import get_model

if TYPE_CHECKING:
    from benchmark.fidelity.verify import Setup

DROPOUT_SUFFIX = "dropout_prob"
LOSS_RTOL = 1e-4  # per-step losses: relative agreement asked of two float32 implementations
WEIGHT_ATOL = 1e-4  # weights after the last step (Adam steps are ~lr, so this is a small fraction of one)


def without_dropout(config: dict[str, Any]) -> dict[str, Any]:
    """The model options with every `*dropout_prob` at 0."""
    return {key: 0.0 if key.endswith(DROPOUT_SUFFIX) else value for key, value in config.items()}


def row_order(n_rows: int, rows_needed: int, seed: int) -> torch.Tensor:
    """Seeded shuffles of the training rows, one after the other, at least `rows_needed` long."""
    generator = torch.Generator().manual_seed(seed)
    epochs = -(-rows_needed // n_rows)
    return torch.cat([torch.randperm(n_rows, generator=generator) for _ in range(epochs)])[:rows_needed]


def max_gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, str]:
    """(largest |a - b| over every tensor, the tensor it is in)."""
    gaps = {name: float((a[name].float() - b[name].float()).abs().max()) for name in a}
    worst = max(gaps, key=gaps.get)
    return gaps[worst], worst


@dataclass
class Pair:
    """tedbench's model and the reference's, from the same weights, each with its own trainer, fed the same rows."""

    ours: torch.nn.Module
    trainer: Trainer
    theirs: torch.nn.Module
    reference: Any  # RecBole's Trainer over `theirs`
    names: Any  # the transplant's name map
    order: torch.Tensor  # reference item id -> tedbench item id
    to_reference_id: torch.Tensor  # tedbench item id -> reference item id
    valid_data: Any
    test_data: Any

    def batch(self, index: torch.Tensor):
        """The reference's Interaction of tedbench's training rows `index`."""
        from recbole.data.interaction import Interaction

        seq, length, target = self.trainer.splits.batch(self.trainer.splits.train.subset(index))
        return Interaction(
            {"item_id_list": self.to_reference_id[seq], "item_length": length, "item_id": self.to_reference_id[target]}
        )


def pair(setup: Setup, seed: int, folder: str) -> Pair:
    """Both sides of `setup` for `seed`, the reference loaded with tedbench's initial weights."""
    import recbole.trainer.trainer as recbole_trainer

    from benchmark.fidelity.verify import reference_data

    names = name_map(setup.model)
    config, train_data, valid_data, test_data = reference_data(setup.reference, setup.settings(seed), setup.splits)
    torch.manual_seed(seed)
    ours = get_model(setup.model).cls(setup.model_config, setup.info)
    theirs = setup.reference.model_class(config, train_data.dataset).to(config["device"])
    order = item_order(train_data.dataset)
    check_inputs(names, theirs.state_dict(), setup.info.item_text, order)
    theirs.load_state_dict(to_reference(names, ours.state_dict(), theirs.state_dict(), order))
    trainer = Trainer(
        ours, setup.splits, replace(setup.train_config, seed=seed), setup.work / folder, setup.device, progress=False
    )
    to_reference_id = torch.empty_like(order)
    to_reference_id[order] = torch.arange(len(order))
    return Pair(
        ours,
        trainer,
        theirs,
        recbole_trainer.Trainer(config, theirs),
        names,
        order,
        to_reference_id.to(setup.device),
        valid_data,
        test_data,
    )


def lockstep(setup: Setup, seed: int, steps: int) -> dict[str, Any]:
    """Train both sides `steps` steps in lockstep (module docstring); per-step losses, final gaps and metrics."""
    setup = replace(setup, model_config=without_dropout(setup.model_config))
    sides = pair(setup, seed, "lockstep")
    batch_size = setup.train_config.batch_size
    rows = row_order(len(setup.splits.train), steps * batch_size, seed).to(setup.device)

    sides.ours.train()  # RecBole's `_train_epoch` sets its side's mode itself
    records = []
    for step in range(steps):
        index = rows[step * batch_size : (step + 1) * batch_size]
        batch = sides.batch(index)
        noise_seed = seed * 1_000_003 + step
        torch.manual_seed(noise_seed)
        mine = float(sides.trainer.step(index))
        torch.manual_seed(noise_seed)
        other = float(sides.reference._train_epoch([batch], step))
        records.append({"step": step, "tedbench": mine, "reference": other, "rel_gap": abs(mine - other) / abs(other)})
        logger.info(f"lockstep seed {seed} step {step + 1}/{steps}: loss {mine:.6f} (tedbench) vs {other:.6f}")

    template = sides.ours.state_dict()
    weight_gap, worst = max_gap(template, to_tedbench(sides.names, sides.theirs.state_dict(), template, sides.order))
    metrics = {
        "tedbench": tedbench_side(sides.ours, sides.trainer.splits),
        "reference": reference_side(sides.reference, {"valid": sides.valid_data, "test": sides.test_data}),
    }
    loss_gap = max(r["rel_gap"] for r in records)
    return {
        "seed": seed,
        "steps": records,
        "loss_gap": loss_gap,
        "weight_gap": weight_gap,
        "worst_tensor": worst,
        "metrics": metrics,
        "agree": loss_gap <= LOSS_RTOL and weight_gap <= WEIGHT_ATOL,
    }


def lockstep_markdown(header: dict[str, Any], results: list[dict[str, Any]], label: str) -> str:
    from benchmark.fidelity.verify import METRICS

    agree = all(r["agree"] for r in results)
    lines = [f"# Lockstep training: {header['model']} on {header['dataset']}, tedbench and {label}", ""]
    lines += [f"- {name}: {value}" for name, value in header.items()]
    lines += [
        "",
        f"**{'AGREE' if agree else 'DIFFER'}: largest relative loss gap "
        f"{max(r['loss_gap'] for r in results):.2e} (asked: ≤ {LOSS_RTOL:.0e}), largest weight gap after the last "
        f"step {max(r['weight_gap'] for r in results):.2e} (asked: ≤ {WEIGHT_ATOL:.0e}).**",
        "",
        "Both sides start from the same weights, take the same batches and the same router noise, with every "
        "dropout probability at 0, and step with their own trainers (see `benchmark/fidelity/lockstep.py`).",
        "",
    ]
    for result in results:
        lines += [
            f"## Seed {result['seed']}",
            "",
            f"Weight gap after step {len(result['steps']) - 1}: {result['weight_gap']:.2e} "
            f"(in `{result['worst_tensor']}`).",
            "",
            f"| step | tedbench loss | {label} loss | relative gap |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['step']} | {r['tedbench']:.6f} | {r['reference']:.6f} | {r['rel_gap']:.2e} |"
            for r in result["steps"]
        ]
        lines += ["", f"| side | split | {' | '.join(METRICS)} |", "|---|---|" + "---|" * len(METRICS)]
        for side, by_split in result["metrics"].items():
            for split, values in by_split.items():
                lines.append(f"| {side} | {split} | {' | '.join(f'{values[m]:.6f}' for m in METRICS)} |")
        lines.append("")
    return "\n".join(lines)


def write_lockstep(out: Path, stem: str, header: dict[str, Any], results: list[dict[str, Any]], label: str) -> dict:
    path = out / f"{stem}.lockstep.md"
    write_text(path, lockstep_markdown(header, results, label))
    return {
        "lockstep": "agree" if all(r["agree"] for r in results) else "differ",
        "loss_gap": max(r["loss_gap"] for r in results),
        "weight_gap": max(r["weight_gap"] for r in results),
        "markdown": str(path),
    }
