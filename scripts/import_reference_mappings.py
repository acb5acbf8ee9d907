"""Write the built-in mappings from the reference's ``master_labels_<source>.csv`` files.

The reference implementation (UniBwTAS/data-priors, commit 94e9865, BSD-3-Clause)
publishes one mapping CSV per extra dataset and source taxonomy. Their facts (which
label may be which class) are converted into labelbridge's YAML form by labelbridge's
own importer (:func:`labelbridge.taxonomy.formats.read_ontology`), so a built-in file
says exactly what the reference says, plus what the import had to decide (listed in its
``notes``). A file that already exists is left alone (hand-made departures are kept)
unless ``--force``; ``benchmarks/reference_interop.py`` then compares every built-in with
its reference file.

Usage::

    python scripts/import_reference_mappings.py [--reference ../shared/reference/data-priors]
        [--force] [--only DATASET]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from labelbridge.errors import UserError
from labelbridge.taxonomy.formats import import_notes, ontology_to_yaml, read_ontology
from labelbridge.taxonomy.registry import MAPPING_DIR

SOURCES = ("cityscapes", "mapillary", "offroad")
REFERENCE_COMMIT = "94e9865"
log = logging.getLogger("import_reference_mappings")


def reference_files(root: Path) -> list[Path]:
    """The reference's mapping CSVs to the three sources, sorted."""
    return sorted(
        p for s in SOURCES for p in (root / "datasets").glob(f"*/lists/master_labels_{s}.csv")
    )


def builtin_name(path: Path) -> str:
    """``<extra taxonomy>_to_<source taxonomy>`` for a reference file."""
    onto = read_ontology(path)
    return f"{onto.extra.name}_to_{onto.source.name}"


def convert(path: Path, root: Path) -> str:
    """The YAML text of one reference file, with its provenance and decisions in notes."""
    onto = read_ontology(path)
    rel = path.relative_to(root).as_posix()
    licence = f"(UniBwTAS/data-priors, commit {REFERENCE_COMMIT}, BSD-3-Clause)"
    onto.notes = import_notes(onto, path, rel, f"of the reference implementation {licence}")
    header = (
        f"# {onto.extra.title} -> {onto.source.title}.\n"
        f"# Facts: the paper's reference mapping {rel}; see notes for what the import decided.\n"
    )
    return header + ontology_to_yaml(onto)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference",
        type=Path,
        default=Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "data-priors",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing built-ins")
    parser.add_argument("--only", help="only the reference folder of this dataset")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    files = reference_files(args.reference)
    if not files:
        log.error("no reference files under %s", args.reference)
        return 2
    failed = 0
    for path in files:
        if args.only and path.parent.parent.name != args.only:
            continue
        try:
            out = MAPPING_DIR / f"{builtin_name(path)}.yaml"
        except UserError as exc:
            log.error("%s", exc)
            failed += 1
            continue
        if out.exists() and not args.force:
            log.info("kept %s (exists; --force to overwrite)", out.name)
            continue
        out.write_text(convert(path, args.reference), encoding="utf-8")
        log.info("wrote %s", out.name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
