"""Bad input: a corrupted file of a tiny dataset in every published layout
(:data:`CORRUPTIONS`), read under ``on_error="raise"`` or ``"skip"`` (:func:`reader_case`).

Outcome :data:`~.outcomes.CLEAR_ERROR` (a :class:`~labelbridge.errors.UserError` naming the
file), :data:`~.outcomes.RECORDED_SKIP` (the sample dropped and listed, every other label
exact) or :data:`~.outcomes.FAILED` (anything else: a crash without the file's name, a
silent drop, a wrong label).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common.layouts import LAYOUTS, LayoutFixture, write_color_label, write_id_label
from labelbridge.data import create_dataset
from labelbridge.data.base import PREPARED_FILE
from labelbridge.errors import UserError

from .outcomes import CLEAR_ERROR, FAILED, RECORDED_SKIP, CaseResult

#: Corruptions applied to one sample of a dataset (issue 9, item 1).
CORRUPTIONS: tuple[str, ...] = (
    "truncated_image",
    "truncated_label",
    "unknown_label",
    "size_mismatch",
    "missing_label",
    "unreadable_label",
    "empty_split",
    "jpeg_label",
)


def truncate(path: Path, keep: float = 0.5) -> None:
    """Keep the first ``keep`` share of ``path``'s bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _label_mode(path: Path) -> str:
    with Image.open(path) as im:
        return "I;16" if im.mode.startswith("I") else ("P" if im.mode == "P" else "L")


def unknown_id(fx: LayoutFixture) -> int:
    """The smallest id in ``0..255`` that is no class of the fixture's taxonomy."""
    known = {c.id for c in fx.taxonomy.classes}
    return next(i for i in range(256) if i not in known)


def unknown_colour(fx: LayoutFixture) -> tuple[int, int, int]:
    """A colour that is no class colour of the fixture's taxonomy."""
    known = {tuple(c.color) for c in fx.taxonomy.classes}
    return next((1, 2, b) for b in range(256) if (1, 2, b) not in known)


def labelled_split(fx: LayoutFixture) -> str:
    """The split with the most labelled samples (first such in name order)."""
    counts = {s: sum(fx.labels[k] is not None for k in keys) for s, keys in fx.keys.items()}
    return max(sorted(counts), key=lambda s: counts[s])


def corrupt(fx: LayoutFixture, split: str, corruption: str) -> tuple[str, Path]:
    """Apply ``corruption`` to the first labelled sample of ``split``.

    Returns:
        the damaged sample's key and the file an error message must name (for
        ``empty_split``: the dataset root).
    """
    key = next(k for k in fx.keys[split] if fx.labels[k] is not None)
    image, label = fx.files[key]
    assert label is not None
    expected = fx.labels[key]
    assert expected is not None
    if corruption == "truncated_image":
        truncate(image, 0.5)
        return key, image
    if corruption == "truncated_label":
        truncate(label, 0.6)
        return key, label
    if corruption == "unknown_label":
        if fx.label_writer is not None:
            ids = expected.copy()
            ids[0, 0] = unknown_id(fx)
            fx.label_writer(label, ids)
        elif fx.taxonomy.label_format == "color":
            rgb = np.asarray(Image.open(label).convert("RGB")).copy()
            rgb[0, 0] = unknown_colour(fx)
            Image.fromarray(rgb).save(label)
        else:
            ids = expected.copy()
            ids[0, 0] = unknown_id(fx)
            write_id_label(label, ids, mode=_label_mode(label))
        return key, label
    if corruption == "size_mismatch":
        taller = np.concatenate([expected, expected[:1]], axis=0)
        if fx.label_writer is not None:
            fx.label_writer(label, taller)
        elif fx.taxonomy.label_format == "color":
            write_color_label(label, taller, fx.taxonomy)
        else:
            write_id_label(label, taller, mode=_label_mode(label))
        return key, label
    if corruption == "missing_label":
        label.unlink()
        return key, image
    if corruption == "unreadable_label":  # root ignores file modes: a folder in its place
        label.unlink()
        label.mkdir()
        return key, label
    if corruption == "jpeg_label":  # a label re-saved as JPEG under its own name
        label.write_bytes(_jpeg_bytes(label, expected))
        return key, label
    if corruption == "empty_split":
        for suffix in (".lst", ".txt"):  # layouts that list their split in a file
            split_list = fx.root / f"{split}{suffix}"
            if split_list.is_file():
                split_list.write_text("")
                return key, fx.root
        for k in fx.keys[split]:
            fx.files[k][0].unlink()
        return key, fx.root
    raise ValueError(f"unknown corruption {corruption!r}")


def _jpeg_bytes(label: Path, ids: np.ndarray) -> bytes:
    """``label``'s picture as JPEG bytes (colour labels in colour, palette and id labels
    as grey values); a label that is no picture (polygons, JSON) gives its ids in grey."""
    import io

    try:
        with Image.open(label) as im:
            im.load()
            if im.mode in ("RGB", "RGBA"):
                picture = im.convert("RGB")
            else:
                picture = Image.fromarray(np.clip(np.asarray(im), 0, 255).astype(np.uint8))
    except (OSError, ValueError):
        picture = Image.fromarray(np.clip(ids, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


_PRISTINE: dict[tuple[str, str], LayoutFixture] = {}


def layout_copy(layout: str, dest: Path, *, cache: Path | None = None) -> LayoutFixture:
    """A fresh copy of the tiny ``layout`` fixture at ``dest``.

    The fixture is generated once per ``cache`` folder and copied from there (writing
    images and loading taxonomies dominates the cost of a case).
    """
    if cache is None:
        return LAYOUTS[layout](dest)
    ident = (layout, str(cache))
    if ident not in _PRISTINE:
        _PRISTINE[ident] = LAYOUTS[layout](cache / layout)
    src = _PRISTINE[ident]
    shutil.copytree(src.root, dest)
    roots = [(src.root, dest)]
    marker_path = dest / PREPARED_FILE
    if marker_path.is_file():  # a prepared folder reading images from its source root
        marker = json.loads(marker_path.read_text())
        if not marker.get("holds_images"):
            source = Path(marker["source_root"])
            copied = dest.parent / f"{dest.name}_published"
            shutil.copytree(source, copied)
            marker["source_root"] = str(copied.resolve())
            marker_path.write_text(json.dumps(marker, indent=2) + "\n")
            roots.append((source.resolve(), copied))

    def move(p: Path | None) -> Path | None:
        if p is None:
            return None
        for old, new in roots:
            if p.resolve().is_relative_to(old.resolve()):
                return new / p.resolve().relative_to(old.resolve())
        raise ValueError(f"{p} is under neither copied root")

    return LayoutFixture(
        dataset=src.dataset,
        root=dest,
        taxonomy=src.taxonomy,
        keys={s: list(k) for s, k in src.keys.items()},
        labels=dict(src.labels),
        images=dict(src.images),
        files={k: (move(i), move(lab)) for k, (i, lab) in src.files.items()},  # type: ignore[misc]
        label_writer=src.label_writer,
    )


def reader_case(
    layout: str, corruption: str, mode: str, scratch: Path, *, cache: Path | None = None
) -> CaseResult:
    """Read a tiny ``layout`` dataset with one corrupted sample under ``on_error=mode``.

    A clear error must be a :class:`UserError` naming the damaged file; a skip must
    drop exactly the damaged sample and list it in ``reader.skipped``. In both modes
    every sample returned must carry exactly the label that was written.
    """
    fx = layout_copy(layout, scratch / layout, cache=cache)
    split = labelled_split(fx)
    key, named = corrupt(fx, split, corruption)
    name = f"{layout}/{corruption}"

    def fail(why: str) -> CaseResult:
        return CaseResult("reader", name, mode, FAILED, why)

    samples = []
    try:
        ds = create_dataset(fx.dataset, fx.root, split, taxonomy=fx.taxonomy, on_error=mode)  # type: ignore[arg-type]
        for sample in ds.iter_samples():
            samples.append(sample)
    except UserError as exc:
        message = str(exc)
        if str(named) not in message:
            return fail(f"error does not name {named}: {message}")
        wrong = [s.key for s in samples if not np.array_equal(s.label, fx.labels[s.key])]
        if wrong:
            return fail(f"wrong labels returned before the error: {wrong}")
        if mode == "skip" and corruption != "empty_split" and len(fx.keys[split]) > 1:
            return fail(f"on_error=skip raised instead of skipping: {message}")
        return CaseResult("reader", name, mode, CLEAR_ERROR, message)
    except Exception as exc:  # noqa: BLE001 - anything else is a failure of the case
        return fail(f"{type(exc).__name__} without a user message: {exc}")
    if mode == "raise":
        return fail("no error raised")
    got = [s.key for s in samples]
    if key in got:
        return fail(f"damaged sample {key} returned")
    if got != [k for k in fx.keys[split] if k != key]:
        return fail(f"samples returned: {got}")
    wrong = [s.key for s in samples if not np.array_equal(s.label, fx.labels[s.key])]
    if wrong:
        return fail(f"wrong labels: {wrong}")
    records = [r for r in ds.skipped if str(named) in r.problem or r.path == str(named)]
    if len(ds.skipped) != 1 or not records:
        return fail(f"skip not recorded naming {named}: {ds.skipped}")
    return CaseResult("reader", name, mode, RECORDED_SKIP, records[0].problem)
