"""Constants used across the package, defined once."""

from __future__ import annotations

#: Label value meaning "no label / ignored" in every train-id space and pseudo-label file.
IGNORE_INDEX: int = 255

#: ImageNet normalisation statistics (RGB, for images scaled to [0, 1]).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Default test-time augmentation scales (the paper's 0.5 .. 2.0 in steps of 0.25).
DEFAULT_TTA_SCALES: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)

#: Environment variable holding the folder under which dataset roots are looked up
#: (``$LABELBRIDGE_DATA/<dataset>``) when no root is given explicitly.
DATA_ROOT_ENV: str = "LABELBRIDGE_DATA"

#: Default seconds a process of a sharded run without a process group (srun or torchrun
#: tasks) waits, after its own pseudo-label shard, for the other shards before the
#: pipeline goes on (``pseudo.shard_wait``).
SHARD_WAIT_SECONDS: float = 3600.0
