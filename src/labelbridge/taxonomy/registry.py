"""Built-in taxonomies and mappings, found by name; a user's own files by path."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from labelbridge.errors import TaxonomyError, UserError
from labelbridge.taxonomy.taxonomy import Taxonomy, normalize_name

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
    return Taxonomy.from_file(TAXONOMY_DIR / f"{name}.yaml", builtin=True)


@cache
def _alias_index() -> dict[str, str | None]:
    """Normalised taxonomy alias -> built-in name (``None`` where two claim it)."""
    index: dict[str, str | None] = {}
    for name in list_taxonomies():
        for alias in _load_builtin(name).aliases:
            key = normalize_name(alias)
            index[key] = name if index.get(key, name) == name else None
    return index


def builtin_taxonomy_name(text: str) -> str | None:
    """The built-in taxonomy called ``text`` or known by it as an alias (e.g. the
    reference's folder name ``"mapillary-vistas"``), or ``None``.

    Raises:
        TaxonomyError: two built-in taxonomies claim the alias.
    """
    if (TAXONOMY_DIR / f"{text}.yaml").is_file():
        return text
    key = normalize_name(text)
    index = _alias_index()
    if key in index:
        if index[key] is None:
            owners = [
                n for n in list_taxonomies() if key in map(normalize_name, _load_builtin(n).aliases)
            ]
            raise TaxonomyError(
                f"taxonomy alias {text!r} is claimed by several taxonomies: {owners}"
            )
        return index[key]
    return None


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
    builtin = (
        builtin_taxonomy_name(text)
        if "/" not in text and not text.endswith((".yaml", ".yml"))
        else None
    )
    if builtin is not None:
        return _load_builtin(builtin)
    candidates = [Path(text)]
    if base_dir is not None and not Path(text).is_absolute():
        candidates.insert(0, base_dir / text)
    for cand in candidates:
        if cand.is_file():
            return Taxonomy.from_file(cand)
    raise TaxonomyError(
        f"unknown taxonomy {text!r}: not a built-in name or alias nor an existing file. "
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


@cache
def mapping_sides(name: str) -> tuple[str, str]:
    """``(source, extra)`` as written in a built-in mapping file (read without building it)."""
    import yaml

    data = yaml.safe_load((MAPPING_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    return str(data["source"]), str(data["extra"])


def mappings_from(extra: str) -> list[tuple[str, str]]:
    """``(source taxonomy, mapping name)`` of every built-in mapping from ``extra``."""
    out = []
    for name in list_mappings():
        src, ext = mapping_sides(name)
        if ext == extra:
            out.append((src, name))
    return out
