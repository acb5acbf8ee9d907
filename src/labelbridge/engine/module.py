"""The LightningModule that trains teachers and students.

Batches arrive as ``(B, 3, H, W)`` uint8 images and ``(B, H, W)`` int64 train ids (see
:class:`labelbridge.data.torch_dataset.SegmentationTorchDataset`); the module scales
images to ``[0, 1]`` and, in training, augments them on the device.

Validation runs over several dataloaders, one per validation set, each with its own
:class:`~labelbridge.evaluation.ConfusionMatrix`. Sets in another taxonomy carry an
ontology mapping; their predictions are projected into that taxonomy before counting.
At the end of the epoch the matrices are summed across processes (never the mIoUs
averaged) and logged as ``val/<label>/mIoU``, ``val/<label>/pixel_accuracy``,
``val/<label>/pixels`` and ``val/<label>/IoU/<class>``; the selection set's mIoU is
also logged as ``val/select/mIoU`` (model selection and early stopping watch it).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning as L
import torch

from labelbridge.engine.augment import SegmentationAugment
from labelbridge.engine.losses import total_loss
from labelbridge.engine.optim import build_optimizer, build_scheduler
from labelbridge.engine.stage_targets import StageTargets
from labelbridge.engine.target_losses import target_losses
from labelbridge.errors import ConfigError
from labelbridge.evaluation import ConfusionMatrix
from labelbridge.evaluation.projected import project_predictions
from labelbridge.models import create_model
from labelbridge.models.checkpoint import checkpoint_meta, model_meta_extra
from labelbridge.taxonomy import Ontology, Taxonomy, load_ontology

log = logging.getLogger(__name__)

#: Metric that model selection and early stopping monitor (higher is better).
SELECT_METRIC = "val/select/mIoU"


def val_set_spec(
    *, label: str, taxonomy: Taxonomy, ontology: str | None = None, select: bool = False
) -> dict[str, Any]:
    """Plain description of one validation set for :class:`SegmentationModule`.

    Args:
        label: report name (metric keys ``val/<label>/...``).
        taxonomy: taxonomy of the set's ground truth (the ontology's extra side when
            ``ontology`` is given, else the training taxonomy).
        ontology: mapping name or file projecting predictions into ``taxonomy``.
        select: whether this set's mIoU selects checkpoints.
    """
    return {
        "label": label,
        "num_classes": taxonomy.num_classes,
        "class_names": list(taxonomy.train_names),
        "ontology": ontology,
        "select": select,
    }


def planned_steps(trainer: L.Trainer) -> tuple[int, int]:
    """``(total optimiser steps of the stage, steps per epoch)``.

    Taken from the datamodule's plan (``train_steps_per_epoch()``) when it has one:
    Lightning's ``estimated_stepping_batches`` builds the train loader, and starts its
    workers, before a resumed stage's loop state is restored, so their first batches
    would come from epoch 0's draw instead of the resumed epoch's.
    """
    epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1
    datamodule = trainer.datamodule
    if datamodule is not None and hasattr(datamodule, "train_steps_per_epoch"):
        per_epoch = int(datamodule.train_steps_per_epoch())
        return per_epoch * epochs, per_epoch
    total = trainer.estimated_stepping_batches
    if not math.isfinite(total):
        return int(trainer.max_steps), 1
    return int(total), max(1, int(total) // epochs)


#: Hyper-parameters a saved checkpoint records in place of the training ones (see
#: :meth:`SegmentationModule.on_save_checkpoint`).
TRAINED_MODULE_HPARAMS: dict[str, Any] = {
    "weights": None,
    "reinit_classifier": False,
    "classifier_from": None,
    "val_sets": [],
}


class SegmentationModule(L.LightningModule):
    """Trains one :class:`~labelbridge.models.SegmentationModel` (attribute ``model``, so
    state-dict keys start with ``"model."``).

    Args:
        model_spec: spec for :func:`labelbridge.models.create_model`.
        taxonomy: the training taxonomy as :meth:`Taxonomy.to_dict` (stored in
            checkpoints so they are self-contained).
        optimizer: keyword arguments of :func:`labelbridge.engine.optim.build_optimizer`
            (``name, lr, encoder_lr, weight_decay, momentum``).
        schedule: keyword arguments of :func:`labelbridge.engine.optim.build_scheduler`
            except the step counts (``name, warmup_steps, warmup_epochs, power,
            milestones, gamma``).
        augment: keyword arguments of :class:`SegmentationAugment`, or ``None`` for none.
        val_sets: one :func:`val_set_spec` per validation dataloader, in order.
        weights: initial weights passed to ``create_model``.
        reinit_classifier: with ``weights`` of another class count, load all but the
            classifier (see ``create_model``).
        classifier_from: with ``weights`` of another taxonomy, the ontology mapping the
            classifier rows are mapped through (see ``create_model``).
        targets: :meth:`StageTargets.hparams <labelbridge.engine.stage_targets.StageTargets.hparams>`
            of a stage that learns from soft or partial labels (batches of target stacks,
            :func:`~labelbridge.engine.target_losses.target_losses`); ``None``: hard labels
            and the model's own loss.

    Raises:
        ConfigError: soft or partial targets for a model that learns from hard masks
            only (Mask2Former).
    """

    def __init__(
        self,
        *,
        model_spec: str,
        taxonomy: dict[str, Any],
        optimizer: dict[str, Any],
        schedule: dict[str, Any],
        augment: dict[str, Any] | None = None,
        val_sets: list[dict[str, Any]] | None = None,
        weights: str | None = None,
        reinit_classifier: bool = False,
        classifier_from: str | None = None,
        targets: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.taxonomy = Taxonomy.from_dict(taxonomy, origin="<checkpoint taxonomy>")
        self.model_spec = model_spec
        self.model = create_model(
            model_spec,
            self.taxonomy.num_classes,
            weights=weights,
            reinit_classifier=reinit_classifier,
            classifier_from=classifier_from,
        )
        self.targets = StageTargets.from_hparams(targets)
        if not self.targets.hard_only and not self.model.pixel_targets:
            raise ConfigError(
                f"{model_spec}: this model learns from hard labels only (its loss matches "
                "masks to classes); train it on hard pseudo-labels ('labels: {pseudo: DIR}'), "
                "not soft or partial labels"
            )
        self._partial_table: torch.Tensor | None = None
        self.optimizer_args = dict(optimizer)
        self.schedule_args = dict(schedule)
        self.augment = SegmentationAugment(**augment) if augment is not None else None
        self.val_sets = list(val_sets or [])
        self._ontologies: list[Ontology | None] = [
            self._load_ontology(spec) for spec in self.val_sets
        ]
        self._val_cms: list[ConfusionMatrix] = []
        #: Metrics of the last finished validation: ``{label: SegmentationMetrics.to_dict()}``.
        self.last_val_metrics: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ set-up
    def _load_ontology(self, spec: dict[str, Any]) -> Ontology | None:
        if spec.get("ontology") is None:
            if spec["num_classes"] != self.taxonomy.num_classes:
                raise ConfigError(
                    f"val set {spec['label']!r} has {spec['num_classes']} classes but the model "
                    f"predicts {self.taxonomy.num_classes}; give it an ontology mapping"
                )
            return None
        onto = load_ontology(spec["ontology"])
        if not onto.source.same_train_space(self.taxonomy):
            raise ConfigError(
                f"{onto.origin}: the mapping's source taxonomy {onto.source.name!r} is not the training "
                f"taxonomy {self.taxonomy.name!r} (val set {spec['label']!r})"
            )
        if onto.extra.num_classes != spec["num_classes"]:
            raise ConfigError(
                f"{onto.origin}: the mapping's extra taxonomy {onto.extra.name!r} has "
                f"{onto.extra.num_classes} classes, val set {spec['label']!r} has {spec['num_classes']}"
            )
        return onto

    @property
    def select_index(self) -> int:
        """Index of the selection val set (``select: True``, else 0)."""
        return next((i for i, s in enumerate(self.val_sets) if s.get("select")), 0)

    def configure_optimizers(self) -> dict[str, Any]:
        """The model's optimiser (plus :meth:`extra_parameter_groups`) and its per-step
        schedule over the stage's planned steps (:func:`planned_steps`)."""
        optimizer = build_optimizer(self.model, **self.optimizer_args)
        for group in self.extra_parameter_groups():
            optimizer.add_param_group(group)
        total, per_epoch = planned_steps(self.trainer)
        scheduler = build_scheduler(
            optimizer, total_steps=total, steps_per_epoch=per_epoch, **self.schedule_args
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # ------------------------------------------------------------------ training
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` float in ``[0, 1]`` -> ``(B, C, H, W)`` logits."""
        return self.model(images)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Sum the :meth:`step_losses` of ``batch`` and log each as ``train/<name>``."""
        losses, batch_size = self.step_losses(batch)
        loss, values = total_loss(losses, step=self.global_step)
        for name, value in values.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=batch_size)
        return loss

    # ------------------------------------------------------------------ hooks
    def prepare(
        self, images: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` uint8 images and ``(B, H, W)`` labels (or ``(B, C, H, W)``
        target stacks) -> images in ``[0, 1]`` and labels, augmented together on the
        device in training."""
        images = images.float() / 255.0
        if self.augment is not None:
            pad = self.targets.layout.pad_values if target.ndim == 4 else None
            images, target = self.augment(images, target, pad)
        return images, target

    def step_losses(self, batch: Any) -> tuple[dict[str, torch.Tensor], int]:
        """Hook: ``({"loss": total, **terms}, batch size)`` of one training batch. Here the
        model's own loss (:meth:`SegmentationModel.compute_loss`) on ``(images, target)``,
        or, for target stacks, :func:`~labelbridge.engine.target_losses.target_losses` of
        its logits; a subclass (distillation) computes its own terms."""
        images, target = self.prepare(*batch)
        if self.targets.hard_only:
            return self.model.compute_loss(images, target), images.shape[0]
        targets = self.targets.layout.unpack(target)
        losses = target_losses(
            self.model(images),
            targets,
            table=self._sets_on(images.device),
            partial_weight=self.targets.partial_weight,
        )
        return losses, images.shape[0]

    def _sets_on(self, device: torch.device) -> torch.Tensor | None:
        """The stage's table of partial-label sets on ``device`` (built on first use, so
        loading a checkpoint never needs the mappings)."""
        if not self.targets.partial:
            return None
        if self._partial_table is None or self._partial_table.device != device:
            table = self.targets.table(self.taxonomy)
            assert table is not None
            self._partial_table = torch.from_numpy(table.table).to(device)
        return self._partial_table

    def extra_parameter_groups(self) -> list[dict[str, Any]]:
        """Hook: optimiser parameter groups besides the model's (trained modules that are
        not part of the exported model, e.g. a feature adapter). None here."""
        return []

    # ------------------------------------------------------------------ validation
    def on_validation_epoch_start(self) -> None:
        self._val_cms = [
            ConfusionMatrix(
                spec["num_classes"], class_names=spec["class_names"], device=self.device
            )
            for spec in self.val_sets
        ]

    def validation_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        images, target = batch
        pred = self.model(images.float() / 255.0).argmax(dim=1)
        onto = self._ontologies[dataloader_idx]
        if onto is not None:
            pred = project_predictions(pred, onto)
        self._val_cms[dataloader_idx].update(pred, target)

    def on_validation_epoch_end(self) -> None:
        results: dict[str, dict[str, Any]] = {}
        for spec, cm in zip(self.val_sets, self._val_cms, strict=True):
            cm.all_reduce()
            metrics = cm.compute()
            label = spec["label"]
            results[label] = metrics.to_dict()
            self.log(f"val/{label}/mIoU", float(metrics.miou), prog_bar=True)
            self.log(f"val/{label}/pixel_accuracy", float(metrics.pixel_accuracy))
            self.log(f"val/{label}/mean_accuracy", float(metrics.mean_accuracy))
            self.log(f"val/{label}/pixels", torch.tensor(metrics.num_pixels, dtype=torch.float64))
            for name, iou in zip(metrics.names(), metrics.per_class_iou, strict=True):
                self.log(f"val/{label}/IoU/{name}", float(iou))
        if self.val_sets:
            select = self.val_sets[self.select_index]["label"]
            self.log(
                SELECT_METRIC,
                float(results[select]["miou"] if results[select]["miou"] is not None else math.nan),
            )
        self.last_val_metrics = results

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the saved hyper-parameters rebuild the *trained* module on any machine
        # (``SegmentationModule.load_from_checkpoint(path)``): the state dict holds the
        # weights, so the initial weights' file, the classifier transfer and the validation
        # sets (files of the training machine; the run folder's config.yaml records them)
        # are not needed; pass ``val_sets=...`` to load_from_checkpoint to validate
        hparams = checkpoint.get("hyper_parameters")
        if isinstance(hparams, dict):
            checkpoint["hyper_parameters"] = {**hparams, **TRAINED_MODULE_HPARAMS}
        checkpoint["labelbridge"] = checkpoint_meta(
            self.model_spec,
            self.taxonomy.num_classes,
            self.taxonomy,
            **model_meta_extra(self.model),
        )
