"""Built-in taxonomies and mappings, found by name; a user's own files by path."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from labelbridge.errors import TaxonomyError, UserError
from labelbridge.taxonomy.taxonomy import Taxonomy

BUILTIN_DIR = Path(__file__).parent / "builtin"
TAXONOMY_DIR = BUILTIN_DIR / "taxonomies"
MAPPING_DIR = BUILTIN_DIR / "mappings"


def list_taxonomies() -> list[str]:
    """Names of the built-in taxonomies, sorted."""
    return sorted(p.stem for p in TAXONOMY_DIR.glob("*.yaml"))


def list_mappings() -> list[str]:
    """Names of the built-in ontology mappings (``<extra>_to_<source>``), sorted."""
    return sorted(p.stem for p in MAPPING_DIR.glob("*.yaml"))


@cache
def _load_builtin(name: str) -> Taxonomy:
    return Taxonomy.from_file(TAXONOMY_DIR / f"{name}.yaml")


def load_taxonomy(name_or_path: str | Path, *, base_dir: Path | None = None) -> Taxonomy:
    """A taxonomy by built-in name (``"cityscapes"``) or by path to a YAML file.

    Args:
        name_or_path: built-in name, or a path (absolute, or relative to ``base_dir``
            or the working directory).
        base_dir: folder that relative paths are resolved against first (e.g. the
            folder of the mapping file that names the taxonomy).

    Raises:
        TaxonomyError: neither a built-in name nor an existing file; lists the names.
    """
    text = str(name_or_path)
    if (TAXONOMY_DIR / f"{text}.yaml").is_file():
        return _load_builtin(text)
    candidates = [Path(text)]
    if base_dir is not None and not Path(text).is_absolute():
        candidates.insert(0, base_dir / text)
    for cand in candidates:
        if cand.is_file():
            return Taxonomy.from_file(cand)
    raise TaxonomyError(
        f"unknown taxonomy {text!r}: not a built-in name nor an existing file. "
        f"Built-in: {', '.join(list_taxonomies())}"
    )


def mapping_path(name_or_path: str | Path) -> Path:
    """Path of a built-in mapping by name, or the given path if it exists."""
    text = str(name_or_path)
    builtin = MAPPING_DIR / f"{text}.yaml"
    if builtin.is_file():
        return builtin
    if Path(text).is_file():
        return Path(text)
    raise UserError(
        f"unknown ontology mapping {text!r}: not a built-in name nor an existing file. "
        f"Built-in: {', '.join(list_mappings())}"
    )
