"""Reading a taxonomy file (YAML, ``docs/taxonomy-format.md``) into a
:class:`~labelbridge.taxonomy.taxonomy.Taxonomy`, validating every entry: each problem is
an error naming the file, line and class. The class offers these as
``Taxonomy.from_dict`` and ``Taxonomy.from_file``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from labelbridge.constants import IGNORE_INDEX
from labelbridge.errors import TaxonomyError
from labelbridge.taxonomy.classes import LABEL_FORMATS, TaxonomyClass
from labelbridge.yamlio import LinedYaml, load_yaml

if TYPE_CHECKING:
    from labelbridge.taxonomy.taxonomy import Taxonomy

T = TypeVar("T", bound="Taxonomy")

#: Keys of a taxonomy file.
TAXONOMY_KEYS = ("name", "title", "label_format", "source", "notes", "classes", "aliases", "groups")
#: Keys of one entry of its ``classes`` list.
CLASS_KEYS = ("id", "name", "color", "ignore", "train_id", "aliases")


def taxonomy_from_dict(
    cls: type[T],
    data: Any,
    *,
    where: LinedYaml | None = None,
    origin: str = "<dict>",
    origin_path: Path | None = None,
) -> T:
    """Build and validate from plain data (see ``docs/taxonomy-format.md``).

    Args:
        cls: the taxonomy class to build (``Taxonomy.from_dict`` passes its own).
        data: the parsed file.
        where: the parsed file with its lines, for messages naming the line.
        origin: the file name for messages.
        origin_path: the file it was loaded from (``Taxonomy.origin``), ``None`` for
            built-ins and taxonomies made in memory.

    Raises:
        TaxonomyError: naming the file, line and problem.
    """
    at = where.where if where is not None else (lambda *k: origin)
    if not isinstance(data, dict):
        raise TaxonomyError(
            f"{origin}: a taxonomy file must be a mapping with 'name' and 'classes'"
        )
    for key in data:
        if key not in TAXONOMY_KEYS:
            raise TaxonomyError(
                f"{at(key)}: unknown key {key!r} (expected {sorted(TAXONOMY_KEYS)})"
            )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise TaxonomyError(f"{at('name')}: 'name' must be a non-empty string")
    raw_classes = data.get("classes")
    if not isinstance(raw_classes, list) or not raw_classes:
        raise TaxonomyError(f"{at('classes')}: 'classes' must be a non-empty list")
    classes = _read_classes(raw_classes, at, name)
    fmt = data.get("label_format", "id")
    if fmt not in LABEL_FORMATS:
        raise TaxonomyError(
            f"{at('label_format')}: label_format must be one of {LABEL_FORMATS}, got {fmt!r}"
        )
    tax_aliases = data.get("aliases", [])
    if not isinstance(tax_aliases, list) or not all(isinstance(a, str) and a for a in tax_aliases):
        raise TaxonomyError(f"{at('aliases')}: 'aliases' must be a list of non-empty strings")
    groups = data.get("groups") or {}
    if not isinstance(groups, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and v and all(isinstance(m, str) for m in v)
        for k, v in groups.items()
    ):
        raise TaxonomyError(
            f"{at('groups')}: 'groups' must map group names to non-empty lists of class names"
        )
    try:
        return cls(
            name,
            classes,
            title=str(data.get("title", "")),
            label_format=fmt,
            source=str(data.get("source", "")),
            notes=str(data.get("notes", "")),
            aliases=tax_aliases,
            groups=groups,
            origin=origin_path,
        )
    except TaxonomyError as exc:
        raise TaxonomyError(f"{origin}: {exc}") from None


def taxonomy_from_file(cls: type[T], path: str | Path, *, builtin: bool = False) -> T:
    """Load a taxonomy file; ``builtin`` marks the shipped files (found by name, so a
    mapping refers to them by name rather than by path)."""
    doc = load_yaml(path)
    return taxonomy_from_dict(
        cls,
        doc.data,
        where=doc,
        origin=str(path),
        origin_path=None if builtin else Path(path).resolve(),
    )


def _read_classes(raw_classes: list[Any], at: Callable[..., str], name: str) -> list[TaxonomyClass]:
    """The validated entries of a taxonomy's ``classes`` list, in file order; train ids
    are given to every class or to none (then counted up over the non-ignored ones) and
    must be ``0..K-1`` without gaps."""
    explicit_train = any(isinstance(c, dict) and "train_id" in c for c in raw_classes)
    classes: list[TaxonomyClass] = []
    seen_names: dict[str, int] = {}
    seen_ids: dict[int, int] = {}
    seen_train: dict[int, str] = {}
    next_train = 0
    for i, entry in enumerate(raw_classes):
        loc = at("classes", i)
        if not isinstance(entry, dict):
            raise TaxonomyError(f"{loc}: each class must be a mapping with id, name, color")
        extra = set(entry) - set(CLASS_KEYS)
        if extra:
            raise TaxonomyError(f"{loc}: unknown key(s) {sorted(extra)} in class entry")
        cid, cname, color = entry.get("id"), entry.get("name"), entry.get("color", [0, 0, 0])
        if not isinstance(cid, int) or isinstance(cid, bool) or not 0 <= cid < 65536:
            raise TaxonomyError(f"{loc}: class id must be an integer in 0..65535, got {cid!r}")
        if not isinstance(cname, str) or not cname:
            raise TaxonomyError(f"{loc}: class name must be a non-empty string, got {cname!r}")
        if (
            not isinstance(color, (list, tuple))
            or len(color) != 3
            or not all(isinstance(v, int) and 0 <= v <= 255 for v in color)
        ):
            raise TaxonomyError(
                f"{loc}: colour of {cname!r} must be [r, g, b] with 0..255, got {color!r}"
            )
        if cname in seen_names:
            raise TaxonomyError(
                f"{loc}: duplicate class name {cname!r} (also entry {seen_names[cname]})"
            )
        if cid in seen_ids:
            raise TaxonomyError(f"{loc}: duplicate class id {cid} (also entry {seen_ids[cid]})")
        seen_names[cname], seen_ids[cid] = i, i
        ignore = bool(entry.get("ignore", False))
        if explicit_train:
            train_id = entry.get("train_id", IGNORE_INDEX)
            if not isinstance(train_id, int) or not 0 <= train_id <= IGNORE_INDEX:
                raise TaxonomyError(f"{loc}: train_id must be an integer 0..255, got {train_id!r}")
            if train_id == IGNORE_INDEX:
                ignore = True
            elif ignore:
                raise TaxonomyError(
                    f"{loc}: class {cname!r} is ignored but has train_id {train_id}"
                )
        else:
            train_id = IGNORE_INDEX if ignore else next_train
            next_train += 0 if ignore else 1
        if not ignore:
            if train_id in seen_train:
                raise TaxonomyError(
                    f"{loc}: train_id {train_id} of {cname!r} already used by {seen_train[train_id]!r}"
                )
            seen_train[train_id] = cname
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
            raise TaxonomyError(
                f"{loc}: aliases of {cname!r} must be a list of non-empty strings, got {aliases!r}"
            )
        classes.append(
            TaxonomyClass(
                cid, cname, tuple(int(v) for v in color), ignore, int(train_id), tuple(aliases)
            )
        )
    if sorted(seen_train) != list(range(len(seen_train))):
        raise TaxonomyError(
            f"{at('classes')}: train ids of taxonomy {name!r} must be 0..K-1 without gaps, "
            f"got {sorted(seen_train)}"
        )
    return classes
