"""What a training stage learns from: hard labels only, or also soft pseudo-labels and
partial labels (decided by its dataset entries' ``labels``), and the pieces that follow
from it: the target stack's layout, the table of partial-label sets, each partial
entry's block of it. The data module and the training module build them from the same
description, so a dataset's rows and the loss's table agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labelbridge.config.train import PartialLossConfig, TrainDatasetConfig
from labelbridge.data.pseudo_folder import soft_top_k
from labelbridge.data.target_stack import TargetLayout
from labelbridge.data.torch_dataset import PartialSource
from labelbridge.errors import ConfigError
from labelbridge.taxonomy import Ontology, Taxonomy, load_ontology
from labelbridge.taxonomy.partial import PartialSetTable, partial_sets


@dataclass(frozen=True)
class StageTargets:
    """The targets of a stage.

    Attributes:
        soft_k: soft-label classes per pixel (the most any soft entry's folder holds).
        partial: mapping of each partial-label entry, in entry order.
        void_option: see :class:`~labelbridge.config.train.PartialLossConfig`.
        partial_weight: weight of the partial-label term.
    """

    soft_k: int = 0
    partial: tuple[str, ...] = field(default_factory=tuple)
    void_option: str = "allowed"
    partial_weight: float = 1.0

    @classmethod
    def of_entries(
        cls, entries: list[TrainDatasetConfig], partial_loss: PartialLossConfig
    ) -> StageTargets:
        """The targets the entries ask for.

        Raises:
            ConfigError: a soft entry whose folder holds no soft labels.
        """
        soft = [soft_top_k(e.pseudo_dir) for e in entries if e.soft and e.pseudo_dir]
        return cls(
            soft_k=max(soft, default=0),
            partial=tuple(e.partial for e in entries if e.partial is not None),
            void_option=partial_loss.void_option,
            partial_weight=partial_loss.weight,
        )

    @property
    def layout(self) -> TargetLayout:
        return TargetLayout(soft_k=self.soft_k, partial=bool(self.partial))

    @property
    def hard_only(self) -> bool:
        return not self.layout.stacked

    def hparams(self) -> dict[str, Any] | None:
        """Plain description for a module's saved hyper-parameters (``None``: hard only)."""
        if self.hard_only:
            return None
        return {
            "soft_k": self.soft_k,
            "partial": list(self.partial),
            "void_option": self.void_option,
            "partial_weight": self.partial_weight,
        }

    @classmethod
    def from_hparams(cls, data: dict[str, Any] | None) -> StageTargets:
        if not data:
            return cls()
        return cls(
            soft_k=int(data["soft_k"]),
            partial=tuple(data["partial"]),
            void_option=str(data["void_option"]),
            partial_weight=float(data["partial_weight"]),
        )

    def _mappings(self, taxonomy: Taxonomy) -> list[Ontology]:
        out = []
        for ref in self.partial:
            onto = load_ontology(ref)
            if not onto.source.same_train_space(taxonomy):
                raise ConfigError(
                    f"{onto.origin}: partial labels map to {onto.source.name!r}, but training "
                    f"uses {taxonomy.name!r}"
                )
            out.append(onto)
        return out

    def table(self, taxonomy: Taxonomy) -> PartialSetTable | None:
        """The stacked sets of every partial entry (``None`` without partial entries)."""
        blocks = [partial_sets(o, self.void_option) for o in self._mappings(taxonomy)]  # type: ignore[arg-type]
        return PartialSetTable.stack(blocks) if blocks else None

    def sources(self, taxonomy: Taxonomy) -> list[PartialSource]:
        """Each partial entry's block of :meth:`table`, in entry order."""
        mappings = self._mappings(taxonomy)
        blocks = [partial_sets(o, self.void_option) for o in mappings]  # type: ignore[arg-type]
        if not blocks:
            return []
        offsets = PartialSetTable.stack(blocks).offsets
        return [
            PartialSource(block, offset, str(o.origin), extra=o.extra)
            for o, block, offset in zip(mappings, blocks, offsets, strict=True)
        ]
