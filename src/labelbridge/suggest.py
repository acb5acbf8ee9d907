"""Suggest an ontology mapping from data.

Runs a teacher over a sample of an extra dataset and counts, for every pair
(extra ground-truth label, teacher class), the pixels that fall into it. From that
contingency table it proposes, for each extra label, the source classes holding a
significant share of its pixels, flags likely systematic labelling gaps (an ignored /
void extra label whose pixels the teacher confidently sees as some class), and flags
source classes the teacher never predicts on the dataset. The proposal is written as a
valid mapping file whose comments give the shares, plus the table as CSV and a heat-map.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from labelbridge.data.base import SegmentationDataset
from labelbridge.models.base import SegmentationModel
from labelbridge.progress import Progress
from labelbridge.taxonomy import Ontology, Taxonomy

log = logging.getLogger(__name__)


@dataclass
class SuggestThresholds:
    """When a source class is proposed for an extra label.

    Attributes:
        min_share: a source class is proposed when it holds at least this share of the
            extra label's pixels (``0..1``).
        max_classes: at most this many source classes per label (largest shares first).
        gap_share: an ignored extra label whose pixels are seen as one class with at
            least this share is flagged as a systematic labelling gap.
        gap_confidence: ... and with at least this mean teacher confidence (``0..1``).
        unseen_share: a source class predicted on less than this share of all labelled
            pixels is flagged as never seen in the dataset.
    """

    min_share: float = 0.15
    max_classes: int = 3
    gap_share: float = 0.2
    gap_confidence: float = 0.6
    unseen_share: float = 1e-4


@dataclass
class Contingency:
    """Pixel counts and confidence sums per (extra class, source class).

    Attributes:
        counts: ``(E, K)`` int64; ``E`` = number of extra classes (file order of the extra
            taxonomy, ignored classes included), ``K`` = source train classes.
        confidence: ``(E, K)`` float64 sum of the teacher's max probability.
        images: number of images counted.
    """

    extra: Taxonomy
    source: Taxonomy
    counts: np.ndarray
    confidence: np.ndarray
    images: int = 0

    @classmethod
    def empty(cls, extra: Taxonomy, source: Taxonomy) -> Contingency:
        shape = (len(extra.classes), source.num_classes)
        return cls(extra, source, np.zeros(shape, np.int64), np.zeros(shape, np.float64))

    def update(self, extra_raw: np.ndarray, probs: torch.Tensor) -> None:
        """Add one image: ``extra_raw`` ``(H, W)`` raw extra ids, ``probs`` ``(K, H, W)``."""
        conf, pred = probs.max(dim=0)
        row_of = np.full(len(self.extra.lut), -1, dtype=np.int64)
        for i, c in enumerate(self.extra.classes):
            row_of[c.id] = i
        rows = row_of[np.clip(extra_raw, 0, len(row_of) - 1)].reshape(-1)
        valid = rows >= 0
        k = self.source.num_classes
        flat = rows[valid] * k + pred.reshape(-1).cpu().numpy()[valid]
        size = len(self.extra.classes) * k
        self.counts += np.bincount(flat, minlength=size).reshape(-1, k)
        self.confidence += np.bincount(
            flat, weights=conf.reshape(-1).double().cpu().numpy()[valid], minlength=size
        ).reshape(-1, k)
        self.images += 1

    def shares(self) -> np.ndarray:
        """``(E, K)`` row-normalised counts (rows without pixels are zero)."""
        totals = self.counts.sum(axis=1, keepdims=True)
        return np.divide(self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0)

    def to_csv(self) -> str:
        """The table as CSV: one row per extra class, one column per source class."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["extra_label", "pixels", *self.source.train_names])
        for i, c in enumerate(self.extra.classes):
            writer.writerow([c.name, int(self.counts[i].sum()), *self.counts[i].tolist()])
        return buf.getvalue()


@dataclass
class Suggestion:
    """A proposed mapping with the evidence behind it."""

    rows: dict[str, list[str]]
    shares: dict[str, dict[str, float]]
    gaps: dict[str, dict[str, float]] = field(default_factory=dict)
    unseen: list[str] = field(default_factory=list)
    empty_labels: list[str] = field(default_factory=list)
    projection: dict[str, str] = field(default_factory=dict)

    def to_ontology(self, source: Taxonomy, extra: Taxonomy) -> Ontology:
        data = {
            "source": source.name,
            "extra": extra.name,
            "unlabelled": "constrained" if self.gaps else "ignore",
            "mapping": self._mapping_rows(extra),
        }
        if self.projection:
            data["projection"] = dict(self.projection)
        return Ontology.from_dict(data, source=source, extra=extra, origin="<suggestion>")

    def _mapping_rows(self, extra: Taxonomy) -> dict[str, list[str] | str]:
        rows: dict[str, list[str] | str] = {}
        for c in extra.classes:
            if c.ignore and not self.gaps:
                continue
            row = self.rows.get(c.name)
            rows[c.name] = row if row else "ignore"
        return rows

    def to_yaml(self, source: Taxonomy, extra: Taxonomy, *, note: str = "") -> str:
        """The proposal as a commented mapping file (valid for ``ontology check``)."""
        lines = [
            f"# Suggested by 'labelbridge ontology suggest'{': ' + note if note else ''}.",
            "# Each row lists the source classes holding a significant share of the extra",
            "# label's pixels in the teacher's predictions; the comments give the shares.",
            "# Review before use: a teacher's systematic errors show up here too.",
        ]
        if self.unseen:
            lines.append(
                f"# Source classes never predicted on this sample: {', '.join(self.unseen)}"
            )
        if self.empty_labels:
            lines.append(
                f"# Extra labels with no pixels in the sample (mapped to ignore): {', '.join(self.empty_labels)}"
            )
        lines += [
            f"source: {source.name}",
            f"extra: {extra.name}",
            f"unlabelled: {'constrained' if self.gaps else 'ignore'}",
            "mapping:",
        ]
        for name, row in self._mapping_rows(extra).items():
            top = sorted(self.shares.get(name, {}).items(), key=lambda kv: -kv[1])[:5]
            comment = ", ".join(f"{k} {v:.1%}" for k, v in top) or "no pixels"
            if name in self.gaps:
                comment = "POSSIBLE LABELLING GAP; " + comment
            value = (
                row if isinstance(row, str) else "[" + ", ".join(_yaml_str(s) for s in row) + "]"
            )
            lines.append(f"  {_yaml_str(name)}: {value}  # {comment}")
        if self.projection:
            lines.append(
                "projection:  # source classes allowed for several labels: the label holding most of its pixels"
            )
            for s, e in self.projection.items():
                lines.append(f"  {_yaml_str(s)}: {_yaml_str(e)}")
        return "\n".join(lines) + "\n"


def _yaml_str(text: str) -> str:
    plain = text.replace("-", "").replace(" ", "").replace("_", "").isalnum()
    return (
        text
        if plain
        and text.lower() not in {"yes", "no", "true", "false", "null", "on", "off", "ignore"}
        else f'"{text}"'
    )


def propose_mapping(table: Contingency, thresholds: SuggestThresholds | None = None) -> Suggestion:
    """Turn a contingency table into a proposed mapping (pure function of the counts)."""
    th = thresholds or SuggestThresholds()
    shares = table.shares()
    names = table.source.train_names
    rows: dict[str, list[str]] = {}
    share_dict: dict[str, dict[str, float]] = {}
    gaps: dict[str, dict[str, float]] = {}
    empty: list[str] = []
    for i, c in enumerate(table.extra.classes):
        share_dict[c.name] = {names[k]: float(shares[i, k]) for k in np.flatnonzero(shares[i] > 0)}
        if table.counts[i].sum() == 0:
            if not c.ignore:
                empty.append(c.name)
            continue
        order = np.argsort(-shares[i], kind="stable")
        chosen = [k for k in order[: th.max_classes] if shares[i, k] >= th.min_share]
        if not chosen:
            chosen = [int(order[0])]
        if c.ignore:
            mean_conf = np.divide(
                table.confidence[i],
                table.counts[i],
                out=np.zeros(len(names)),
                where=table.counts[i] > 0,
            )
            hidden = {
                names[k]: float(shares[i, k])
                for k in order[: th.max_classes]
                if shares[i, k] >= th.gap_share and mean_conf[k] >= th.gap_confidence
            }
            if hidden:
                gaps[c.name] = hidden
                rows[c.name] = list(hidden)
            continue
        rows[c.name] = [names[k] for k in chosen]
    # gaps only matter with a 'constrained' policy: then every ignored class needs a row
    if gaps:
        for c in table.extra.classes:
            if c.ignore and c.name not in rows:
                rows[c.name] = []
    labelled = np.array([not c.ignore for c in table.extra.classes])
    col_total = table.counts[labelled].sum(axis=0)
    all_px = max(int(col_total.sum()), 1)
    unseen = [names[k] for k in range(len(names)) if col_total[k] / all_px < th.unseen_share]
    # projection: where a source class sits in several labelled rows, take the label with most pixels
    projection: dict[str, str] = {}
    for k, sname in enumerate(names):
        owners = [
            i
            for i, c in enumerate(table.extra.classes)
            if not c.ignore and sname in rows.get(c.name, [])
        ]
        if len(owners) > 1:
            best = max(owners, key=lambda i: table.counts[i, k])
            projection[sname] = table.extra.classes[best].name
    return Suggestion(rows, share_dict, gaps, unseen, empty, projection)


@torch.no_grad()
def build_contingency(
    model: SegmentationModel,
    dataset: SegmentationDataset,
    *,
    source: Taxonomy,
    sample: int | None = None,
    seed: int = 0,
    input_size: tuple[int, int] | None = None,
    flip: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> Contingency:
    """Run ``model`` over (a random sample of) ``dataset`` and count pixels.

    Args:
        model: teacher; its output classes are ``source``'s train ids.
        dataset: extra dataset reader (labels in its own raw ids).
        source: the teacher's taxonomy.
        sample: number of images drawn without replacement (``None`` = all).
        input_size: ``(W, H)`` the image is resized to before the teacher sees it.
        flip: average with the horizontally flipped prediction.
    """
    import torch.nn.functional as F

    if model.num_classes != source.num_classes:
        raise ValueError(
            f"teacher predicts {model.num_classes} classes, taxonomy {source.name!r} has {source.num_classes}"
        )
    indices = np.arange(len(dataset))
    if sample is not None and sample < len(indices):
        indices = np.sort(np.random.default_rng(seed).choice(indices, size=sample, replace=False))
    table = Contingency.empty(dataset.taxonomy, source)
    model = model.to(device).eval()
    bar = Progress(
        total=len(indices), desc=f"suggest {dataset.name}", enabled=progress, leave=False
    )
    for i in bar.track(indices):
        s = dataset[int(i)]
        if s.label is None:
            continue
        x = torch.from_numpy(s.image).permute(2, 0, 1)[None].float().div(255).to(device)
        h, w = x.shape[-2:]
        xin = (
            F.interpolate(
                x, size=(input_size[1], input_size[0]), mode="bilinear", align_corners=False
            )
            if input_size
            else x
        )
        logits = model(xin)
        probs = logits.softmax(1)
        if flip:
            probs = 0.5 * (probs + model(xin.flip(-1)).softmax(1).flip(-1))
        if probs.shape[-2:] != (h, w):
            probs = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)
        table.update(s.label, probs[0])
    return table


def main_class_agreement(suggestion: Suggestion, reference: Ontology) -> dict[str, bool]:
    """For each labelled extra class of ``reference``: does the suggestion contain the
    reference row's *main* class (its first listed source class)?"""
    out = {}
    for c in reference.extra.train_classes:
        row = reference.rows.get(c.name)
        if not isinstance(row, list) or not row:
            continue
        out[c.name] = row[0] in suggestion.rows.get(c.name, [])
    return out


__all__ = [
    "Contingency",
    "Suggestion",
    "SuggestThresholds",
    "build_contingency",
    "main_class_agreement",
    "propose_mapping",
]
