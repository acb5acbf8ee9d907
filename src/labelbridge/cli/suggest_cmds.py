"""``labelbridge ontology suggest``: propose a mapping from a teacher's predictions."""

from __future__ import annotations

from pathlib import Path

import typer

from labelbridge.cli.app import CHECKPOINT_HELP, emit_json, ontology_app, parse_size
from labelbridge.files import write_text_atomic


@ontology_app.command("suggest")
def ontology_suggest_cmd(
    teacher: Path = typer.Option(
        ...,
        "--teacher",
        help=f"Teacher checkpoint: {CHECKPOINT_HELP}.",
    ),
    dataset: str = typer.Option(..., "--dataset", help="Extra dataset reader name, e.g. camvid."),
    root: Path = typer.Option(
        None, "--root", help="Dataset root (default: $LABELBRIDGE_DATA/<dataset>)."
    ),
    split: str = typer.Option("train", "--split", help="Split to sample."),
    sample: int = typer.Option(100, "--sample", help="Number of images to sample (0 = all)."),
    out: Path = typer.Option(
        ..., "--out", help="Mapping YAML to write; the table goes beside it as .csv and .png."
    ),
    input_size: str = typer.Option(
        None, "--input-size", help="Resize images to WxH for the teacher, e.g. 960x704."
    ),
    flip: bool = typer.Option(
        False, "--flip/--no-flip", help="Average with the flipped prediction."
    ),
    min_share: float = typer.Option(
        0.15, help="Propose a source class from this share of a label's pixels."
    ),
    max_classes: int = typer.Option(3, help="At most this many source classes per extra label."),
    gap_share: float = typer.Option(
        0.2, help="Flag a void label hiding a class with this share..."
    ),
    gap_confidence: float = typer.Option(0.6, help="...and this mean teacher confidence."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    seed: int = typer.Option(0, help="Seed of the image sample."),
    as_json: bool = typer.Option(False, "--json", help="Print the proposal and flags as JSON."),
) -> None:
    """Run a teacher over a sample of an extra dataset and propose a mapping.

    Writes OUT (a valid mapping with the shares as comments), OUT.csv (pixel counts:
    extra label x teacher class) and OUT.png (heat-map). Review the proposal before use.
    """
    from labelbridge.data import create_dataset
    from labelbridge.models.checkpoint import load_checkpoint
    from labelbridge.suggest import SuggestThresholds, build_contingency, propose_mapping
    from labelbridge.viz.contingency import plot_contingency

    loaded = load_checkpoint(teacher)
    reader = create_dataset(dataset, root, split)
    table = build_contingency(
        loaded.model,
        reader,
        source=loaded.taxonomy,
        sample=sample or None,
        seed=seed,
        input_size=parse_size(input_size),
        flip=flip,
        device=device,
    )
    th = SuggestThresholds(
        min_share=min_share,
        max_classes=max_classes,
        gap_share=gap_share,
        gap_confidence=gap_confidence,
    )
    proposal = propose_mapping(table, th)
    proposal.to_ontology(loaded.taxonomy, reader.taxonomy)  # validates
    write_text_atomic(
        out,
        proposal.to_yaml(
            loaded.taxonomy, reader.taxonomy, note=f"{dataset}/{split}, {table.images} images"
        ),
    )
    write_text_atomic(out.with_suffix(".csv"), table.to_csv())
    plot_contingency(
        table.shares(),
        [c.name for c in reader.taxonomy.classes],
        loaded.taxonomy.train_names,
        out.with_suffix(".png"),
        chosen=proposal.rows,
        title=f"{dataset}/{split} ({table.images} images): share of each label's pixels per teacher class (%)",
    )
    result = {
        "mapping": str(out),
        "images": table.images,
        "rows": proposal.rows,
        "gaps": proposal.gaps,
        "unseen_source_classes": proposal.unseen,
        "empty_extra_labels": proposal.empty_labels,
    }
    if as_json:
        emit_json(result)
        return
    print(f"wrote {out} (+ .csv, .png) from {table.images} images")
    for name, row in proposal.rows.items():
        print(f"  {name:<24} -> {', '.join(row) if row else '(ignore)'}")
    for name, hidden in proposal.gaps.items():
        print(
            f"  possible labelling gap: {name!r} hides "
            + ", ".join(f"{k} ({v:.0%})" for k, v in hidden.items())
        )
    if proposal.unseen:
        print(f"  source classes never seen: {', '.join(proposal.unseen)}")
