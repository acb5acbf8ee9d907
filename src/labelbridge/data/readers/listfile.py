"""Generic list-file layout: one ``<image> <label>`` pair per line, as CamVid's SegNet
release (``train.txt``: ``train/0001TP_006690.png trainannot/0001TP_006690.png``) and
many small datasets ship it.

Layout::

    <split>.txt (or <split>.lst)   lines "<image path> [<label path>]", relative to the root
    taxonomy.yaml                  the label taxonomy (unless ``taxonomy=`` is given)

Any ``*.txt`` / ``*.lst`` file in the root names a split. Absolute paths written on the
publisher's machine (SegNet's ``/SegNet/CamVid/train/...``) resolve to their longest
trailing part that exists under the root. A line with only an image path is an
unlabelled image. Labels are id PNGs, or colours when the taxonomy says
``label_format: color``. Pairs keep the order of the file.
"""

from __future__ import annotations

from pathlib import Path

from labelbridge.data.base import FilePair, resolve_root
from labelbridge.data.readers.folder import RootTaxonomy
from labelbridge.data.registry import register_dataset
from labelbridge.errors import SplitAbsent

LIST_SUFFIXES = (".txt", ".lst")


@register_dataset
class ListFile(RootTaxonomy):
    name = "listfile"
    splits = ()
    layout = (
        "<split>.txt lines '<image path> [<label path>]' (relative to the root) + taxonomy.yaml"
    )

    @classmethod
    def available_splits(cls, root: str | Path | None) -> tuple[str, ...]:
        folder = resolve_root(root, cls.name)
        return tuple(
            sorted(p.stem for p in folder.iterdir() if p.suffix in LIST_SUFFIXES and p.is_file())
        )

    def list_pairs(self) -> list[FilePair]:
        for suffix in LIST_SUFFIXES:
            path = self.root / f"{self.split}{suffix}"
            if path.is_file():
                return self.pairs_from_list_file(path)
        present = self.available_splits(self.root)
        raise SplitAbsent(
            f"{self.root / (self.split + '.txt')}: split {self.split!r} not found; list files "
            f"present: {list(present)}"
        )

    @property
    def has_labels(self) -> bool:
        """``False`` when no line of the split file names a label."""
        pairs = getattr(self, "pairs", None)
        return not pairs or any(p.label is not None for p in pairs)
