"""Config parts that every stage shares: a dataset reference, a validation set, a
model reference (a teacher), and the rule for names that become folders or metric keys.

Each stage config (:mod:`~labelbridge.config.train`, :mod:`~labelbridge.config.distill`,
:mod:`~labelbridge.config.pseudo`, :mod:`~labelbridge.config.pipeline`) is composed of
these parts, so a key means the same in every file:

* in a dataset entry, ``root``, ``split``, ``on_error`` and ``limit`` (:class:`DatasetLocation`),
  and ``reader``, the reader's registry name (:class:`ReaderKey`); ``name`` is the
  output folder where an entry is written to one (pseudo-labelling, pipeline extras).
  Entries read as they are (training, validation, distillation targets) have no output
  folder and accept ``name`` as the older spelling of ``reader``;
* a model reference is ``checkpoint`` (a file that carries its taxonomy), or ``model``
  (a spec) + ``weights`` + ``taxonomy`` (:class:`TeacherRef`).
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from labelbridge.config.base import StrictModel

#: Names that become folder names or metric keys: letters, digits, ``._-``, not starting
#: with a separator (no path separators, no hidden files).
FOLDER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def folder_name(value: str) -> str:
    """``value`` if it is a safe folder/metric name (:data:`FOLDER_NAME_RE`).

    Raises:
        ValueError: it is not (pydantic reports it with the key and line).
    """
    if not FOLDER_NAME_RE.match(value):
        raise ValueError(f"{value!r} must be a name of letters, digits, '.', '_' or '-'")
    return value


class DatasetLocation(StrictModel):
    """Where a dataset's files are and how its bad files are handled.

    Attributes:
        root: dataset root, or ``None`` for ``$LABELBRIDGE_DATA/<reader>``.
        split: split name.
        on_error: ``raise`` on a bad file, or ``skip`` it (logged and listed in the
            stage's report).
        limit: only the first ``limit`` samples of the split.
    """

    root: str | None = None
    split: str = "train"
    on_error: Literal["raise", "skip"] = "raise"
    limit: int | None = Field(default=None, ge=1)


class ReaderKey(StrictModel):
    """The reader of a dataset entry.

    Attributes:
        reader: reader registry name (``labelbridge datasets list``).
    """

    reader: str


class ReadAsItIs(ReaderKey):
    """An entry read as it is, with no output folder of its own: ``name`` is accepted as
    the older spelling of ``reader`` (configs written before ``reader`` was the one key)."""

    @model_validator(mode="before")
    @classmethod
    def _older_spelling(cls, data: object) -> object:
        if not isinstance(data, dict) or "name" not in data:
            return data
        data = dict(data)
        name = data.pop("name")
        if data.setdefault("reader", name) != name:
            raise ValueError(
                f"'name' ({name!r}) and 'reader' ({data['reader']!r}) differ; an entry read "
                "as it is has no output folder, so 'name' can only be the older spelling "
                "of 'reader': give 'reader' alone"
            )
        return data


class DatasetRef(DatasetLocation, ReadAsItIs):
    """A dataset read as it is (``reader`` and the :class:`DatasetLocation` keys)."""


class ValDatasetConfig(DatasetRef):
    """One validation (or evaluation) set.

    Attributes:
        split: split name (default ``val``).
        ontology: mapping (name or file) from this set's taxonomy (its *extra* side) to
            the target taxonomy (its *source* side); predictions are projected through
            it before scoring. ``None``: the set's taxonomy must be the target taxonomy.
        label: report name (metric keys ``val/<label>/mIoU``); default ``reader``.
        select: this set's mIoU selects the best checkpoint and drives early stopping
            (default: the first entry).
    """

    split: str = "val"
    ontology: str | None = None
    label: str | None = None
    select: bool = False

    @property
    def report_name(self) -> str:
        return self.label or self.reader

    @field_validator("label")
    @classmethod
    def _safe_label(cls, value: str | None) -> str | None:
        return None if value is None else folder_name(value)


def unique_report_names(entries: list[ValDatasetConfig], group: str = "val") -> None:
    """Check that the sets' report names are unique and at most one selects.

    Raises:
        ValueError: a repeated report name, or more than one ``select: true``.
    """
    names = [v.report_name for v in entries]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(
            f"{group} report names must be unique (give each a 'label'); repeated: {dup}"
        )
    if sum(v.select for v in entries) > 1:
        raise ValueError(f"at most one {group} entry may set 'select: true'")


class TeacherRef(StrictModel):
    """A model to load: a checkpoint that carries its taxonomy, or a spec with its
    weights and the taxonomy of its outputs (read by :func:`labelbridge.models.load_model`).

    Attributes:
        checkpoint: labelbridge/Lightning checkpoint, or a published file that
            :func:`labelbridge.models.checkpoint.load_checkpoint` recognises.
        model: model spec for :func:`labelbridge.models.create_model` (``"espnetv2:s=2.0"``).
        weights: weights file of ``model``.
        taxonomy: taxonomy name or file of ``model``'s outputs.
    """

    #: Whether a reference must be given (a pipeline teacher may be trained instead).
    reference_required: ClassVar[bool] = True

    checkpoint: str | None = None
    model: str | None = None
    weights: str | None = None
    taxonomy: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: object) -> object:
        if isinstance(data, dict) and "spec" in data:
            raise ValueError(
                "'spec' is called 'model' in a model reference (checkpoint, or model + "
                "weights + taxonomy)"
            )
        return data

    @model_validator(mode="after")
    def _one_form(self) -> TeacherRef:
        if self.checkpoint is not None and self.model is not None:
            raise ValueError(
                "give either 'checkpoint' or 'model' (+ 'weights', 'taxonomy'), not both"
            )
        if self.model is None and (self.weights is not None or self.taxonomy is not None):
            raise ValueError("'weights' and 'taxonomy' go with 'model'")
        if self.reference_required and self.checkpoint is None and self.model is None:
            raise ValueError("give 'checkpoint', or 'model' and 'taxonomy' (and usually 'weights')")
        return self

    @property
    def given(self) -> bool:
        """Whether a checkpoint or a model is named."""
        return self.checkpoint is not None or self.model is not None

    def describe(self) -> dict[str, str]:
        """The reference's set keys (recorded in reports)."""
        keys = ("checkpoint", "model", "weights", "taxonomy")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
