"""The example configs shipped inside the package (``labelbridge/configs/*.yaml``; the
repository's ``configs/`` is the same folder) and ``labelbridge init``, which writes one of
them into a user's folder as a starter config.

An example's kind is its file name without ``.yaml`` (``camvid_teacher``,
``pseudo_idd_to_camvid``, ...); the command that runs it follows from the name's prefix
(:data:`COMMAND_OF_PREFIX`), and its summary is its first comment line.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from labelbridge.errors import UserError
from labelbridge.files import write_text_atomic

#: File-name prefix (or suffix, for ``*_teacher``) of an example -> the command that runs it.
COMMAND_OF_PREFIX = {
    "pseudo_": "pseudo-label",
    "distill_": "distill",
    "student_": "train",
    "demo": "pipeline",
}


@dataclass(frozen=True)
class ExampleConfig:
    """One shipped example: ``kind`` (file stem), the command that runs it, its first
    comment line, and its text."""

    kind: str
    command: str
    summary: str
    text: str

    @property
    def file_name(self) -> str:
        return f"{self.kind}.yaml"


def _command(kind: str) -> str:
    for prefix, command in COMMAND_OF_PREFIX.items():
        if kind.startswith(prefix):
            return command
    return "train"  # *_teacher


def _summary(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#") and line.strip("# "):
            return line.lstrip("# ").strip()
    return ""


def example_configs() -> dict[str, ExampleConfig]:
    """Every shipped example, by kind (sorted)."""
    folder = resources.files("labelbridge") / "configs"
    out = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        kind = entry.name[: -len(".yaml")]
        text = entry.read_text(encoding="utf-8")
        out[kind] = ExampleConfig(kind, _command(kind), _summary(text), text)
    return out


def write_example(kind: str, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Write the example ``kind`` to ``out_dir/<kind>.yaml`` (folder created, written
    atomically); the written path.

    Raises:
        UserError: unknown kind (the message lists the kinds), or the file exists and
            ``overwrite`` is false.
    """
    examples = example_configs()
    if kind not in examples:
        raise UserError(f"unknown config kind {kind!r}; one of: {', '.join(examples)}")
    path = Path(out_dir) / examples[kind].file_name
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, examples[kind].text)
    return path
