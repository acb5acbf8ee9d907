"""Config of the pseudo-labelling stage (``labelbridge pseudo-label CONFIG.yaml``).

Example (``configs/pseudo_camvid_idd_to_cityscapes.yaml``)::

    teacher:
      checkpoint: ../shared/weights/espnetv2_s_2.0_city_1024x512.pth
    datasets:
      - {name: camvid_train, reader: camvid, root: null, split: train,
         ontology: camvid11_to_cityscapes}
    tta: {flip: true, scales: [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0], batch_scales: true}
    priors: true
    outputs: {confidence: false, soft_labels: {enabled: false, top_k: 3}, previews: 4}
    output: runs/pseudo/camvid_idd
    device: auto

Relative paths (checkpoint, weights, roots, ontology files, output) are resolved
against the working directory, as on the command line. A dataset ``root`` of ``null``
means ``$LABELBRIDGE_DATA/<reader>``.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from labelbridge.config.base import StrictModel, load_config
from labelbridge.config.parts import DatasetLocation, ReaderKey, TeacherRef, folder_name
from labelbridge.constants import DEFAULT_TTA_SCALES


class TeacherConfig(TeacherRef):
    """The pseudo-labelling teacher: a model reference
    (:class:`~labelbridge.config.parts.TeacherRef`) whose taxonomy is known: a checkpoint
    carries it, a ``model`` needs ``taxonomy``."""

    @model_validator(mode="after")
    def _taxonomy_known(self) -> TeacherConfig:
        if self.model is not None and self.taxonomy is None:
            raise ValueError("give 'checkpoint', or 'model' and 'taxonomy' (and usually 'weights')")
        return self


class DatasetEntry(DatasetLocation, ReaderKey):
    """One extra dataset to pseudo-label (``root``, ``split``, ``on_error``, ``limit`` as
    in :class:`~labelbridge.config.parts.DatasetLocation`; ``limit`` counts before sharding).

    Attributes:
        name: output sub-folder (``<output>/<name>/``); unique within the config.
        reader: reader registry name (``labelbridge datasets list``).
        ontology: mapping name or file; its extra taxonomy must be the reader's.
    """

    name: str
    ontology: str

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return folder_name(value)


class TTAConfig(StrictModel):
    """Test-time augmentation.

    Attributes:
        flip: also predict the horizontally flipped image (and flip the scores back).
        scales: resize factors of the image; predictions are resized back to the image's
            native size before averaging.
        batch_scales: run the flipped and unflipped image of one scale in one forward pass
            (``False``: one pass per image and flip; same numbers up to float rounding).
    """

    flip: bool = True
    scales: list[float] = Field(default_factory=lambda: list(DEFAULT_TTA_SCALES), min_length=1)
    batch_scales: bool = True

    @field_validator("scales")
    @classmethod
    def _positive_unique(cls, value: list[float]) -> list[float]:
        if any(not s > 0 for s in value):
            raise ValueError(f"scales must be > 0, got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"scales must not repeat, got {value}")
        return value


class SoftLabelConfig(StrictModel):
    """Top-k soft labels written next to each hard label as ``<key>_soft.npz``."""

    enabled: bool = False
    top_k: int = Field(default=3, ge=1, le=255)


class OutputsConfig(StrictModel):
    """Optional extra outputs.

    Attributes:
        confidence: write ``<key>_conf.png`` (uint8, max masked probability x 255).
        soft_labels: write ``<key>_soft.npz`` (top-k ids uint8 + probabilities float16).
        previews: number of Fig. 1-style preview panels per dataset (0 = none).
    """

    confidence: bool = False
    soft_labels: SoftLabelConfig = Field(default_factory=SoftLabelConfig)
    previews: int = Field(default=4, ge=0)


class PseudoLabelConfig(StrictModel):
    """Everything ``labelbridge pseudo-label`` needs.

    Attributes:
        teacher: see :class:`TeacherConfig`.
        datasets: the extra datasets, each with its ontology mapping.
        tta: see :class:`TTAConfig`.
        priors: mask scores outside each pixel's allowed set (``False``: Naive Student).
        outputs: see :class:`OutputsConfig`.
        output: root folder; each dataset writes to ``<output>/<name>/``.
        device: ``cpu``, ``cuda`` (``cuda:N``) or ``auto`` (CUDA when available).
        batch_size: images of equal size per forward pass (x2 with flip batching). Byte-
            identical outputs across shard counts and resumes are guaranteed for
            ``batch_size: 1``; larger batches may change float rounding on some devices.
        num_workers: threads that decode inputs and encode/write outputs.
        threads: torch intra-op threads (``None``: leave torch's setting); fix it for
            byte-identical outputs across machines.
    """

    teacher: TeacherConfig
    datasets: list[DatasetEntry] = Field(min_length=1)
    tta: TTAConfig = Field(default_factory=TTAConfig)
    priors: bool = True
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    output: str
    device: str = "auto"
    batch_size: int = Field(default=1, ge=1)
    num_workers: int = Field(default=2, ge=0)
    threads: int | None = Field(default=None, ge=1)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("cpu", "auto") and not re.match(r"^cuda(:\d+)?$", value):
            raise ValueError(f"device must be cpu, cuda, cuda:N or auto, got {value!r}")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> PseudoLabelConfig:
        names = [d.name for d in self.datasets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(
                f"dataset names must be unique (they are output folders); repeated: {dup}"
            )
        return self

    @property
    def output_dir(self) -> Path:
        return Path(self.output)


def load_pseudo_config(path: str | Path, overrides: list[str] | None = None) -> PseudoLabelConfig:
    """Load and validate a pseudo-labelling config file.

    Raises:
        ConfigError: unknown keys, wrong types or values, naming file, key and line.
    """
    return load_config(PseudoLabelConfig, path, overrides)
