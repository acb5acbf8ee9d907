"""What the world holds: images per split, and where each dataset is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from labelbridge.world.domains import CLEAR, DUSK, OVERCAST


@dataclass(frozen=True)
class WorldSizes:
    """Number of images per dataset split."""

    source_train: int = 40
    source_val: int = 40
    extra_a: int = 200
    extra_b: int = 200
    wild: int = 80

    @classmethod
    def tiny(cls) -> WorldSizes:
        """A few images per split, for tests."""
        return cls(source_train=4, source_val=3, extra_a=4, extra_b=4, wild=3)


@dataclass
class WorldDataset:
    """One generated dataset in the folder layout.

    Attributes:
        name: dataset name (also its folder name under the world root).
        root: folder holding ``images/``, ``labels/`` and ``taxonomy.yaml``.
        splits: ``{split: number of images}``.
        taxonomy: path of ``taxonomy.yaml``.
        mapping: path of the ontology mapping to the source taxonomy (extras only).
        domain: name of the appearance domain.
    """

    name: str
    root: Path
    splits: dict[str, int]
    taxonomy: Path
    mapping: Path | None = None
    domain: str = ""


@dataclass
class WorldPaths:
    """Where :func:`generate_world` wrote everything.

    Attributes:
        root: the world folder.
        datasets: ``{"source", "extra_a", "extra_b", "wild"}`` -> :class:`WorldDataset`.
        rendered: ``True`` when this call rendered the world, ``False`` when it reused
            a complete world with the same parameters.
    """

    root: Path
    datasets: dict[str, WorldDataset] = field(default_factory=dict)
    rendered: bool = True

    @property
    def source_taxonomy(self) -> Path:
        return self.datasets["source"].taxonomy

    @property
    def extras(self) -> list[WorldDataset]:
        return [d for d in self.datasets.values() if d.mapping is not None]


def describe_world(out_dir: Path, sizes: WorldSizes) -> WorldPaths:
    """Where the world of ``sizes`` lives under ``out_dir`` (nothing is written)."""

    def ds(name: str, splits: dict[str, int], domain: str, mapped: bool = False) -> WorldDataset:
        root = out_dir / name
        mapping = out_dir / "mappings" / f"{name}_to_source.yaml" if mapped else None
        return WorldDataset(name, root, splits, root / "taxonomy.yaml", mapping, domain)

    return WorldPaths(
        root=out_dir,
        datasets={
            "source": ds(
                "source", {"train": sizes.source_train, "val": sizes.source_val}, CLEAR.name
            ),
            "extra_a": ds("extra_a", {"train": sizes.extra_a}, OVERCAST.name, mapped=True),
            "extra_b": ds("extra_b", {"train": sizes.extra_b}, DUSK.name, mapped=True),
            "wild": ds("wild", {"val": sizes.wild}, "wild"),
        },
    )
