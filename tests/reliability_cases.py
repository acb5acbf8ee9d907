"""Reliability cases shared by the tests (``tests/test_reliability_*.py``,
``tests/cli/test_cli_errors.py``, ``tests/engine/test_kill_resume.py``) and by
``benchmarks/reliability.py`` (issue 9).

Three families, each a function that sets a case up in a scratch folder, runs it
through the public API or the real console script, and classifies what happened:

* **bad input** (:func:`reader_case`, :func:`pseudo_case`): a corrupted file of a tiny
  dataset in every published layout, read under ``on_error="raise"`` or ``"skip"``.
  Outcome :data:`CLEAR_ERROR` (a :class:`~labelbridge.errors.UserError` naming the file),
  :data:`RECORDED_SKIP` (the sample dropped and listed, every other label exact) or
  :data:`FAILED` (anything else: a crash without the file's name, a silent drop, a wrong
  label). Resource faults (:data:`RESOURCE_CASES`: out of memory at a TTA scale, a full
  disk) give a clear error or :data:`RECORDED_FALLBACK`.
* **bad configuration** (:data:`CLI_CASES`, :func:`run_cli_case`): mappings, stage configs,
  checkpoints, run through ``labelbridge ...`` in a subprocess; a clear error is exit
  status 2, one ``error:`` paragraph naming the file and the problem, no traceback.
* **interruption** (:func:`kill_resume_trial`): a stage run by the real CLI is killed
  with SIGKILL after a random delay, re-run to completion, and its outputs are compared
  with an uninterrupted run and audited for partial files (:func:`audit_outputs`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from fixtures_layouts import LAYOUTS, LayoutFixture, write_color_label, write_id_label
from labelbridge.data import create_dataset
from labelbridge.data.base import PREPARED_FILE
from labelbridge.errors import UserError

#: Outcomes of a bad-input case.
CLEAR_ERROR = "clear error"
RECORDED_SKIP = "recorded skip"
RECORDED_FALLBACK = "recorded fallback"
FAILED = "FAILED"

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

#: Console script of the package.
CLI = "labelbridge"


@dataclass
class CaseResult:
    """What one case gave.

    Attributes:
        group: ``reader``, ``pseudo-label`` or ``cli``.
        name: the case, e.g. ``camvid/truncated_image``.
        mode: ``raise`` or ``skip`` (``-`` for configuration cases).
        outcome: :data:`CLEAR_ERROR`, :data:`RECORDED_SKIP` or :data:`FAILED`.
        detail: the message seen, or why the case failed.
    """

    group: str
    name: str
    mode: str
    outcome: str
    detail: str = ""


# ============================================================================ bad input
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


# ---------------------------------------------------------------------------- pseudo-labelling
#: Mapping used by the pseudo-labelling cases (CamVid labels -> Cityscapes teacher).
PSEUDO_MAPPING = "camvid11_to_cityscapes"


def tiny_teacher(taxonomy: str = "cityscapes", seed: int = 0) -> Any:
    """A :class:`~labelbridge.pseudo.run.Teacher` wrapping a seeded TinySegNet."""
    import torch

    from labelbridge.models import TinySegNet
    from labelbridge.pseudo.run import Teacher
    from labelbridge.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    torch.manual_seed(seed)
    return Teacher(
        model=TinySegNet(tax.num_classes).eval(), taxonomy=tax, description={"model": "tiny"}
    )


def pseudo_config(data: Path, out: Path, *, on_error: str = "raise", **changes: Any) -> Any:
    """A small pseudo-labelling config for a CamVid-layout folder (one TTA pass, no previews)."""
    from labelbridge.config.pseudo import PseudoLabelConfig

    raw: dict[str, Any] = {
        "teacher": {"model": "tiny", "taxonomy": "cityscapes"},
        "datasets": [
            {
                "name": "cv",
                "reader": "camvid",
                "root": str(data),
                "split": "train",
                "ontology": PSEUDO_MAPPING,
                "on_error": on_error,
            }
        ],
        "tta": {"flip": False, "scales": [1.0]},
        "outputs": {"previews": 0},
        "output": str(out),
        "device": "cpu",
        "num_workers": 0,
        "threads": 1,
    }
    raw.update(changes)
    return PseudoLabelConfig.model_validate(raw)


def label_files(folder: Path) -> dict[str, bytes]:
    """``{relative path: bytes}`` of the label PNGs under ``folder`` (no previews)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*.png"))
        if "previews" not in p.relative_to(folder).parts
    }


_PSEUDO_REFERENCE: dict[str, dict[str, bytes]] = {}


def pseudo_reference(cache: Path) -> dict[str, bytes]:
    """Label PNGs of an undamaged run over the tiny CamVid fixture (computed once per cache)."""
    from labelbridge.pseudo.run import run_pseudo_label

    if str(cache) not in _PSEUDO_REFERENCE:
        fx = layout_copy("camvid", cache / "pseudo_ref_data", cache=cache)
        run_pseudo_label(pseudo_config(fx.root, cache / "pseudo_ref"), teacher=tiny_teacher())
        _PSEUDO_REFERENCE[str(cache)] = label_files(cache / "pseudo_ref" / "cv")
    return _PSEUDO_REFERENCE[str(cache)]


def pseudo_case(corruption: str, mode: str, scratch: Path, *, cache: Path) -> CaseResult:
    """Pseudo-label a tiny CamVid folder with one damaged sample under ``on_error=mode``.

    A clear error must name the damaged file; a skip must be counted in the summary
    and listed in ``report.json``. Either way no label file may be written for the
    damaged image and every written label must equal the undamaged run's bytes.
    """
    from labelbridge.pseudo.run import run_pseudo_label

    reference = pseudo_reference(cache)
    fx = layout_copy("camvid", scratch / "camvid", cache=cache)
    key, named = corrupt(fx, "train", corruption)
    out = scratch / "out"
    name = f"camvid/{corruption}"

    def fail(why: str) -> CaseResult:
        return CaseResult("pseudo-label", name, mode, FAILED, why)

    def written_ok() -> str:
        got = label_files(out / "cv") if (out / "cv").is_dir() else {}
        if f"{key}.png" in got:
            return f"a label was written for the damaged image {key}"
        wrong = sorted(k for k, v in got.items() if reference.get(k) != v)
        return f"labels differ from the undamaged run: {wrong}" if wrong else ""

    try:
        (summary,) = run_pseudo_label(
            pseudo_config(fx.root, out, on_error=mode), teacher=tiny_teacher()
        )
    except UserError as exc:
        message = str(exc)
        if str(named) not in message:
            return fail(f"error does not name {named}: {message}")
        if mode == "skip" and corruption != "empty_split":
            return fail(f"on_error: skip raised instead of skipping: {message}")
        return (
            CaseResult("pseudo-label", name, mode, CLEAR_ERROR, message)
            if not written_ok()
            else fail(written_ok())
        )
    except Exception as exc:  # noqa: BLE001 - anything else is a failure of the case
        return fail(f"{type(exc).__name__} without a user message: {exc}")
    if mode == "raise":
        return fail("no error raised")
    problem = written_ok()
    if problem:
        return fail(problem)
    report = json.loads((out / "cv" / "report.json").read_text(encoding="utf-8"))
    listed = [
        s for s in report.get("skipped", []) if s.get("key") == key or str(named) in json.dumps(s)
    ]
    if not listed:
        return fail(f"skip of {key} not listed in report.json (skipped: {report.get('skipped')})")
    if summary.failed + len(report.get("skipped", [])) == 0:
        return fail("skip not counted")
    return CaseResult("pseudo-label", name, mode, RECORDED_SKIP, listed[0].get("error", ""))


# ============================================================================ bad configuration
def run_cli(
    args: list[str], *, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real console script ``labelbridge ARGS`` in ``cwd`` (one torch thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    exe = shutil.which(CLI) or CLI
    return subprocess.run(
        [exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def builtin_mapping_text(name: str = PSEUDO_MAPPING) -> str:
    """Text of a built-in mapping file."""
    import labelbridge.taxonomy as taxonomy_pkg

    return (Path(taxonomy_pkg.__file__).parent / "builtin" / "mappings" / f"{name}.yaml").read_text(
        encoding="utf-8"
    )


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of ``text`` that starts with ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), start=1) if line.startswith(needle))


def edited_mapping(
    where: Path, old: str, new: str | None, *, duplicate: bool = False
) -> tuple[Path, int]:
    """Write ``bad.yaml``: the CamVid -> Cityscapes mapping with the line starting
    ``old`` replaced by ``new`` (removed for ``None``; repeated with ``duplicate``).
    Returns the file and the number of the line an error must name."""
    lines = builtin_mapping_text().splitlines()
    i = line_of("\n".join(lines), old) - 1
    if duplicate:
        lines.insert(i + 1, lines[i])
        number = i + 2
    elif new is None:
        del lines[i]
        number = line_of("\n".join(lines), "mapping:")
    else:
        lines[i] = new
        number = i + 1
    path = where / "bad.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, number


#: A training config with one unknown key (line 9) and one wrong type (line 10).
TRAIN_CONFIG_BAD = """\
taxonomy: camvid11
datasets:
  - {name: camvid, root: data, split: train}
val:
  - {name: camvid, root: data, split: val}
model:
  spec: tiny
output: run
epochz: 3
batch_size: many
"""

#: A pseudo-labelling config with an unknown key inside ``tta`` (line 7).
PSEUDO_CONFIG_BAD = """\
teacher: {model: tiny, taxonomy: cityscapes}
datasets:
  - {name: cv, reader: camvid, root: data, split: train, ontology: camvid11_to_cityscapes}
output: out
device: cpu
tta:
  scalez: [1.0]
"""


def tiny_checkpoint(path: Path, taxonomy: str) -> Path:
    """Save a TinySegNet labelbridge checkpoint predicting ``taxonomy``."""
    from labelbridge.models import save_checkpoint
    from labelbridge.taxonomy import load_taxonomy

    teacher = tiny_teacher(taxonomy)
    return save_checkpoint(path, teacher.model, spec="tiny", taxonomy=load_taxonomy(taxonomy))


def renamed_key_checkpoint(path: Path) -> tuple[Path, str, str]:
    """A checkpoint whose first parameter key is renamed (strict loading must refuse it).
    Returns the file, the original key (missing) and the new key (unexpected)."""
    import torch

    tiny_checkpoint(path, "cityscapes")
    data = torch.load(path, weights_only=True)
    old = next(iter(data["state_dict"]))
    new = f"renamed_{old}"
    data["state_dict"][new] = data["state_dict"].pop(old)
    torch.save(data, path)
    return path, old, new


@dataclass
class CliCase:
    """A bad-configuration case run through the console script.

    Attributes:
        name: what is wrong.
        setup: writes the files into a scratch folder (the working directory) and
            returns the arguments and the texts the error must contain.
        usage: a command-line usage error (click shows the usage, exit 2) rather than
            a :class:`UserError` paragraph.
        slow: costs a full start of the training stack and adds little over another
            case (the test suite marks it slow; the benchmark runs it).
    """

    name: str
    setup: Callable[[Path], tuple[list[str], list[str]]]
    usage: bool = False
    slow: bool = False


def _mapping_case(
    old: str, new: str | None, needle: str, *, duplicate: bool = False
) -> Callable[[Path], tuple[list[str], list[str]]]:
    def setup(cwd: Path) -> tuple[list[str], list[str]]:
        path, line = edited_mapping(cwd, old, new, duplicate=duplicate)
        return ["ontology", "check", path.name], [f"{path.name}:{line}:", needle]

    return setup


def _camvid_data(cwd: Path) -> Path:
    return layout_copy("camvid", cwd / "data").root


def _train_bad(cwd: Path) -> tuple[list[str], list[str]]:
    (cwd / "train.yaml").write_text(TRAIN_CONFIG_BAD, encoding="utf-8")
    return ["train", "train.yaml"], [
        "train.yaml:9",
        "epochz",
        "unknown key",
        "train.yaml:10",
        "batch_size",
    ]


def _pseudo_bad(cwd: Path) -> tuple[list[str], list[str]]:
    (cwd / "pseudo.yaml").write_text(PSEUDO_CONFIG_BAD, encoding="utf-8")
    return ["pseudo-label", "pseudo.yaml"], ["pseudo.yaml:7", "tta.scalez", "unknown key"]


def _pseudo_wrong_type(cwd: Path) -> tuple[list[str], list[str]]:
    text = PSEUDO_CONFIG_BAD.replace("  scalez: [1.0]", "  scales: large")
    (cwd / "pseudo.yaml").write_text(text, encoding="utf-8")
    return ["pseudo-label", "pseudo.yaml"], ["pseudo.yaml:7", "tta.scales"]


def _taxonomy_mismatch(cwd: Path) -> tuple[list[str], list[str]]:
    _camvid_data(cwd)
    tiny_checkpoint(cwd / "camvid_teacher.ckpt", "camvid11")
    text = PSEUDO_CONFIG_BAD.replace(
        "teacher: {model: tiny, taxonomy: cityscapes}", "teacher: {checkpoint: camvid_teacher.ckpt}"
    )
    text = text.replace("tta:\n  scalez: [1.0]\n", "tta: {flip: false, scales: [1.0]}\n")
    (cwd / "pseudo.yaml").write_text(text, encoding="utf-8")
    return ["pseudo-label", "pseudo.yaml"], ["cityscapes", "camvid11", "teacher"]


def _strict_loading(cwd: Path) -> tuple[list[str], list[str]]:
    path, old, new = renamed_key_checkpoint(cwd / "renamed.ckpt")
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(cwd / "img.png")
    args = ["predict", "img.png", "--checkpoint", path.name, "--out", "pred"]
    return args, [path.name, f"missing keys (1): {old}", f"unexpected keys (1): {new}"]


def _truncated_checkpoint(cwd: Path) -> tuple[list[str], list[str]]:
    path = tiny_checkpoint(cwd / "cut.ckpt", "cityscapes")
    truncate(path, 0.5)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(cwd / "img.png")
    return ["predict", "img.png", "--checkpoint", path.name, "--out", "pred"], [
        path.name,
        "truncated",
    ]


def _yaml_as_checkpoint(cwd: Path) -> tuple[list[str], list[str]]:
    (cwd / "teacher.yaml").write_text("teacher:\n  checkpoint: a.ckpt\n", encoding="utf-8")
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(cwd / "img.png")
    return ["predict", "img.png", "--checkpoint", "teacher.yaml", "--out", "pred"], [
        "teacher.yaml",
        "not a PyTorch checkpoint",
    ]


def _output_is_a_file(cwd: Path) -> tuple[list[str], list[str]]:
    path = tiny_checkpoint(cwd / "m.ckpt", "cityscapes")
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(cwd / "img.png")
    (cwd / "pred").write_text("not a folder", encoding="utf-8")
    return ["predict", "img.png", "--checkpoint", path.name, "--out", "pred"], ["pred: "]


def _changed_finished_run(cwd: Path) -> tuple[list[str], list[str]]:
    setup = setup_train(cwd)
    base = [*setup.args, "--set", "epochs=1", "--set", "finetune.enabled=false"]
    done = run_cli(base, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"the first training run failed: {done.stderr[-2000:]}")
    return [*base, "--set", "batch_size=2"], ["config.yaml", "changed: batch_size: 4 -> 2"]


CLI_CASES: tuple[CliCase, ...] = (
    CliCase(
        "mapping: misspelt extra label",
        _mapping_case("  Building:", "  Bildng: [building, wall]", "'Bildng'"),
    ),
    CliCase("mapping: unknown source class", _mapping_case("  Pole:", "  Pole: [poles]", "poles")),
    CliCase("mapping: extra label not covered", _mapping_case("  Pole:", None, "'Pole'")),
    CliCase("mapping: empty set", _mapping_case("  Pole:", "  Pole: []", "empty set")),
    CliCase(
        "mapping: duplicate key", _mapping_case("  Pole:", None, "duplicate key", duplicate=True)
    ),
    CliCase("mapping: wrong type", _mapping_case("  Pole:", "  Pole: 3", "must be a list")),
    CliCase(
        "mapping: unknown taxonomy", _mapping_case("source:", "source: cityscapez", "cityscapez")
    ),
    CliCase(
        "dataset: unknown name",
        lambda cwd: (["datasets", "check", "nosuchset", "--root", "."], ["nosuchset"]),
    ),
    CliCase(
        "dataset: missing root",
        lambda cwd: (["datasets", "check", "camvid", "--root", "absent"], ["absent"]),
    ),
    CliCase("train config: unknown key and wrong type", _train_bad),
    CliCase(
        "train config: file missing",
        lambda cwd: (["train", "nosuch.yaml"], ["nosuch.yaml"]),
        slow=True,
    ),
    CliCase("pseudo-label config: unknown key", _pseudo_bad),
    CliCase("pseudo-label config: wrong type", _pseudo_wrong_type),
    CliCase("checkpoint taxonomy differs from the mapping's source", _taxonomy_mismatch),
    CliCase("strict weight loading: mismatched keys", _strict_loading),
    CliCase("checkpoint: truncated file", _truncated_checkpoint),
    CliCase("checkpoint: a YAML file given as checkpoint", _yaml_as_checkpoint),
    CliCase("output folder: a file of that name exists", _output_is_a_file),
    CliCase("train: other settings on a finished run folder", _changed_finished_run, slow=True),
    CliCase(
        "usage: missing argument",
        lambda cwd: (["ontology", "check"], ["Missing argument"]),
        usage=True,
    ),
    CliCase(
        "usage: unknown option",
        lambda cwd: (["train", "x.yaml", "--epochs", "3"], ["No such option"]),
        usage=True,
    ),
)


def classify_cli(
    case: CliCase, proc: subprocess.CompletedProcess[str], needles: list[str]
) -> CaseResult:
    """:data:`CLEAR_ERROR` when ``proc`` exited 2 with one ``error:`` paragraph (or the
    usage text) holding every needle and no traceback; else :data:`FAILED`."""
    err = proc.stderr
    problems = []
    if proc.returncode != 2:
        problems.append(f"exit status {proc.returncode}")
    if "Traceback" in err:
        problems.append("traceback shown")
    if case.usage:
        if "Usage:" not in err:
            problems.append("no usage text")
        paragraph = err
    else:
        starts = [i for i, line in enumerate(err.splitlines()) if line.startswith("error: ")]
        if len(starts) != 1:
            problems.append(f"{len(starts)} 'error:' paragraphs")
            paragraph = err
        else:
            rest = err.splitlines()[starts[0] :]
            paragraph = "\n".join(rest)
            if any(not line.strip() for line in rest[:-1]) or len(rest) > 30:
                problems.append("error message is not one paragraph")
    missing = [n for n in needles if n not in paragraph]
    if missing:
        problems.append(f"message lacks {missing}")
    message = paragraph.strip()
    if problems:
        return CaseResult("cli", case.name, "-", FAILED, f"{'; '.join(problems)}: {message[-400:]}")
    return CaseResult("cli", case.name, "-", CLEAR_ERROR, message)


def run_cli_case(case: CliCase, cwd: Path) -> CaseResult:
    """Set ``case`` up in ``cwd`` (created), run the console script, classify."""
    cwd.mkdir(parents=True, exist_ok=True)
    args, needles = case.setup(cwd)
    return classify_cli(case, run_cli(args, cwd=cwd), needles)


# ============================================================================ interruption
#: Files left by atomic writers while they write (they must not survive a resume).
TEMP_PATTERNS: tuple[str, ...] = ("*.lbtmp", "*.tmp", ".*.tmp*")


def _checkpoint_step(path: Path) -> int | None:
    """``global_step`` stored in a Lightning checkpoint (``None`` when absent)."""
    import torch

    if not path.is_file():
        return None
    data = torch.load(path, map_location="cpu", weights_only=False)
    return int(data["global_step"])


def audit_outputs(folder: Path, *, allow_temp: bool = False) -> list[str]:
    """Problems with the files under ``folder``: zero-byte files, leftover temporary
    files (unless ``allow_temp``), and files of a known type that do not parse (PNG,
    NPZ, JSON, JSON lines, YAML, checkpoints). With ``allow_temp`` (right after a kill)
    an append-only manifest may also be empty or end in a torn line: the next run cuts
    the tail and appends."""
    import torch

    problems = []
    if not folder.exists():
        return problems
    temp = {p for pattern in TEMP_PATTERNS for p in folder.rglob(pattern) if p.is_file()}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if path in temp:
            if not allow_temp:
                problems.append(f"{rel}: temporary file left behind")
            continue
        if path.stat().st_size == 0:
            if not (allow_temp and path.suffix == ".jsonl"):  # an append-only log with no line yet
                problems.append(f"{rel}: zero bytes")
            continue
        try:
            if path.suffix == ".png":
                with Image.open(path) as im:
                    im.load()
            elif path.suffix == ".npz":
                with np.load(path) as npz:
                    [npz[k] for k in npz.files]
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".jsonl":
                lines = path.read_text(encoding="utf-8").splitlines()
                for i, line in enumerate(lines):
                    try:
                        json.loads(line)
                    except json.JSONDecodeError:
                        if not (allow_temp and i == len(lines) - 1):
                            raise
            elif path.suffix in (".yaml", ".yml"):
                yaml.safe_load(path.read_text(encoding="utf-8"))
            elif path.suffix in (".ckpt", ".pth"):
                torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
            problems.append(f"{rel}: does not parse ({type(exc).__name__}: {exc})")
    return problems


def make_camvid_images(
    root: Path, *, count: int, size: tuple[int, int] = (64, 48), seed: int = 0
) -> Path:
    """A CamVid-layout split ``train`` of ``count`` random images with random labels."""
    rng = np.random.default_rng(seed)
    w, h = size
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "trainannot").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            root / "train" / f"f{i:03d}.png"
        )
        Image.fromarray(rng.integers(0, 12, (h, w), dtype=np.uint8), mode="L").save(
            root / "trainannot" / f"f{i:03d}.png"
        )
    return root


@dataclass
class StageSetup:
    """A stage run by the CLI in a working folder.

    Attributes:
        stage: ``pseudo-label``, ``train`` or ``pipeline``.
        args: CLI arguments (relative to the working folder).
        output: the folder the stage writes (relative to the working folder).
    """

    stage: str
    args: list[str]
    output: str


def setup_pseudo(work: Path) -> StageSetup:
    """Teacher checkpoint + 120 CamVid-layout images; flip and three scales, all outputs."""
    make_camvid_images(work / "data", count=120)
    tiny_checkpoint(work / "teacher.ckpt", "cityscapes")
    cfg = {
        "teacher": {"checkpoint": "teacher.ckpt"},
        "datasets": [
            {
                "name": "cv",
                "reader": "camvid",
                "root": "data",
                "split": "train",
                "ontology": PSEUDO_MAPPING,
            }
        ],
        "tta": {"flip": True, "scales": [0.5, 1.0, 1.5]},
        "outputs": {
            "confidence": True,
            "soft_labels": {"enabled": True, "top_k": 3},
            "previews": 2,
        },
        "output": "out",
        "device": "cpu",
        "num_workers": 2,
        "threads": 1,
    }
    (work / "pseudo.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return StageSetup("pseudo-label", ["pseudo-label", "pseudo.yaml", "--no-progress"], "out")


def setup_train(work: Path) -> StageSetup:
    """The toy 3-class folder dataset; 6 epochs of 4 steps + a 2-epoch fine-tune, with
    random augmentation and a data-loading worker (both must resume bit-exactly)."""
    from fixtures_toydata import make_toy_dataset

    make_toy_dataset(work / "toy", splits={"train": 12, "val": 3})
    cfg = {
        "taxonomy": "toy/taxonomy.yaml",
        "datasets": [{"name": "folder", "root": "toy", "split": "train"}],
        "val": [{"name": "folder", "root": "toy", "split": "val", "label": "toy"}],
        "model": {"spec": "tiny"},
        "optimizer": {"lr": 0.01},
        "batch_size": 4,
        "steps_per_epoch": 4,
        "epochs": 6,
        "num_workers": 1,
        "augment": {"scale_range": [0.75, 1.5], "crop": [32, 48]},
        "early_stopping": {"enabled": False},
        "finetune": {"enabled": True, "epochs": 2},
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
        },
        "output": "run",
    }
    (work / "train.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return StageSetup("train", ["train", "train.yaml"], "run")


def setup_pipeline(work: Path) -> StageSetup:
    """The tiny synthetic world; teacher, both pseudo-label arms, both students."""
    from labelbridge.world import WorldSizes, generate_world

    generate_world(work / "world", seed=1, sizes=WorldSizes.tiny(), image_size=(64, 48))
    train = {
        "model": {"spec": "tiny"},
        "epochs": 2,
        "steps_per_epoch": 2,
        "batch_size": 2,
        "num_workers": 0,
        "augment": {"enabled": False},
        "early_stopping": {"enabled": False},
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
        },
    }
    cfg = {
        "run_dir": "run",
        "taxonomy": "world/source/taxonomy.yaml",
        "source": [{"name": "folder", "root": "world/source", "split": "train"}],
        "val": [{"name": "folder", "root": "world/source", "split": "val", "label": "source_val"}],
        "evaluation": [
            {"name": "folder", "root": "world/source", "split": "val", "label": "source_val"},
            {"name": "folder", "root": "world/wild", "split": "val", "label": "wild"},
        ],
        "teacher": {"train": train},
        "extras": [
            {
                "name": "extra_a",
                "reader": "folder",
                "root": "world/extra_a",
                "ontology": "world/mappings/extra_a_to_source.yaml",
            },
            {
                "name": "extra_b",
                "reader": "folder",
                "root": "world/extra_b",
                "ontology": "world/mappings/extra_b_to_source.yaml",
            },
        ],
        "pseudo": {
            "arms": ["priors", "no_priors"],
            "tta": {"flip": True, "scales": [1.0]},
            "device": "cpu",
            "num_workers": 0,
            "outputs": {"previews": 1},
        },
        "finetune": {"enabled": True, "lr_factor": 0.1, "epochs": 1},
        "threads": 1,
    }
    (work / "pipeline.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return StageSetup("pipeline", ["pipeline", "pipeline.yaml"], "run")


SETUPS: dict[str, Callable[[Path], StageSetup]] = {
    "pseudo-label": setup_pseudo,
    "train": setup_train,
    "pipeline": setup_pipeline,
}


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_to_end(setup: StageSetup, work: Path, timeout: float = 1800) -> float:
    """Run the stage to completion; returns its wall time in seconds.

    Raises:
        RuntimeError: non-zero exit (with the end of stderr).
    """
    start = time.perf_counter()
    proc = run_cli(setup.args, cwd=work, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(
            f"labelbridge {' '.join(setup.args)} failed ({proc.returncode}): {proc.stderr[-2000:]}"
        )
    return time.perf_counter() - start


def run_and_kill(setup: StageSetup, work: Path, *, changes: int, jitter: float) -> float | None:
    """Start the stage, watch its output folder, and SIGKILL its process group
    ``jitter`` seconds after the ``changes``-th change of its outputs.

    Returns:
        seconds from the start to the kill, or ``None`` when the stage finished first.
    """
    exe = shutil.which(CLI) or CLI
    out = work / setup.output
    start = time.perf_counter()
    proc = subprocess.Popen(
        [exe, *setup.args],
        cwd=work,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    seen, count = _snapshot(out), 0
    while proc.poll() is None:
        now = _snapshot(out)
        if now != seen:
            count += 1
            seen = now
            if count >= changes:
                time.sleep(jitter)
                if proc.poll() is not None:
                    break
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return time.perf_counter() - start
        time.sleep(0.05)
    proc.wait()
    return None


def stage_fingerprint(stage: str, output: Path) -> dict[str, Any]:
    """What must equal between an interrupted-and-resumed run and an uninterrupted one.

    * pseudo-label: the bytes of every label, confidence and soft-label file;
    * train: the global step and epoch of each stage's ``last.ckpt``, the steps of its
      validation history, and the weights (every tensor of the state dict, bit for bit)
      of each stage's ``last.ckpt`` and of ``final.ckpt``;
    * pipeline: the finished stages of ``state.json``, the bytes of every pseudo-label
      file, and the steps and weights of every training stage as for train.
    """
    if stage == "pseudo-label":
        return {"files": _pseudo_bytes(output)}
    if stage == "train":
        return {"steps": _train_steps(output), "weights": _train_weights(output)}
    state = json.loads((output / "state.json").read_text(encoding="utf-8"))
    done = sorted(k for k, v in state["stages"].items() if v.get("status") == "done")
    pseudo = {
        f"{p.relative_to(output).as_posix()}/{name}": digest
        for p in sorted(output.glob("iter*/pseudo_*"))
        for name, digest in _pseudo_bytes(p).items()
    }
    return {
        "done": done,
        "pseudo": pseudo,
        "steps": _train_steps(output),
        "weights": _train_weights(output),
    }


def weights_digest(checkpoint: Path) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a checkpoint's state dict (a
    Lightning checkpoint's ``state_dict`` or a bare one), in key order."""
    import hashlib

    import torch

    data = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = data.get("state_dict", data) if isinstance(data, dict) else data
    h = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor):
            continue
        t = tensor.detach().contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _train_weights(run: Path) -> dict[str, str]:
    """``{checkpoint path: weights digest}`` of every stage's ``last.ckpt`` and every
    ``final.ckpt`` under ``run``."""
    paths = sorted([*run.rglob("checkpoints/last.ckpt"), *run.rglob("final.ckpt")])
    return {p.relative_to(run).as_posix(): weights_digest(p) for p in paths}


def _pseudo_bytes(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and p.suffix in (".png", ".npz")
        and "previews" not in p.relative_to(folder).parts
        and not any(p.match(t) for t in TEMP_PATTERNS)
    }


def _train_steps(run: Path) -> dict[str, Any]:
    out = {}
    for stage_dir in sorted(p.parent.parent for p in run.rglob("checkpoints/last.ckpt")):
        import torch

        data = torch.load(
            stage_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
        )
        marker = stage_dir / "stage_done.json"
        history = json.loads(marker.read_text())["history"] if marker.is_file() else None
        out[stage_dir.relative_to(run).as_posix()] = {
            "global_step": int(data["global_step"]),
            "epoch": int(data["epoch"]),
            "history_steps": None if history is None else [h.get("step") for h in history],
        }
    return out


def _last_checkpoints(output: Path) -> dict[str, int | None]:
    return {
        p.relative_to(output).as_posix(): _safe_step(p)
        for p in sorted(output.rglob("checkpoints/last.ckpt"))
    }


def _safe_step(path: Path) -> int | None:
    try:
        return _checkpoint_step(path)
    except Exception:  # noqa: BLE001 - a corrupt checkpoint is reported by the audit
        return None


def progress(stage: str, output: Path) -> str:
    """How far a stage got: manifest records, checkpoint steps, finished pipeline stages."""
    if not output.exists():
        return "nothing written"
    if stage == "pseudo-label":
        lines = sum(
            len(p.read_text(encoding="utf-8").splitlines()) for p in output.rglob("manifest*.jsonl")
        )
        return f"{lines} images recorded"
    steps = ", ".join(
        f"{k.split('/checkpoints')[0]}@{v}" for k, v in _last_checkpoints(output).items()
    )
    if stage == "train":
        return f"checkpoints: {steps or 'none'}"
    state = output / "state.json"
    done = 0
    if state.is_file():
        try:
            done = sum(
                v.get("status") == "done" for v in json.loads(state.read_text())["stages"].values()
            )
        except (json.JSONDecodeError, KeyError):
            return "state.json unreadable"
    return f"{done} stages done; checkpoints: {steps or 'none'}"


def _csv_logs(output: Path) -> set[Path]:
    return set(output.rglob("logs/csv*/metrics.csv")) if output.exists() else set()


def _first_step(metrics_csv: Path) -> int | None:
    """The ``step`` of the first row of a Lightning CSV log (``None``: no row yet)."""
    import csv

    try:
        with open(metrics_csv, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("step") not in (None, ""):
                    return int(float(row["step"]))
    except (OSError, ValueError):
        return None
    return None


def continuation_problems(
    output: Path, before: dict[str, int | None], logs_before: set[Path]
) -> list[str]:
    """Training stages that did not continue from their checkpoint: a CSV log started by
    the last invocation in a stage that had a ``last.ckpt`` must begin at that
    checkpoint's global step (a restart from scratch would begin near 0)."""
    problems = []
    for log in sorted(_csv_logs(output) - logs_before):
        stage_dir = log.parent.parent.parent  # <stage>/logs/csv_N/metrics.csv
        key = (stage_dir / "checkpoints" / "last.ckpt").relative_to(output).as_posix()
        expected = before.get(key)
        if expected is None:  # a fresh start, not a resume
            continue
        first = _first_step(log)
        if first is not None and first != expected:
            problems.append(
                f"{log.relative_to(output)}: started at step {first}, checkpoint was at {expected}"
            )
    return problems


@dataclass
class TrialResult:
    """One kill-and-resume trial.

    Attributes:
        stage: the stage.
        delay: seconds after the start at which SIGKILL was sent.
        progress: how far the stage had got when it was killed.
        after_kill: problems of the outputs right after the kill (temp files allowed).
        after_resume: problems after the final resume (none allowed).
        steps_back: training checkpoints whose global step went backwards (restarted).
        identical: the resumed outputs equal the uninterrupted run's.
        restarts: runs that finished before their kill and were started over from
            scratch before this kill.
        differing: entries of :func:`stage_fingerprint` that differ (files lost or
            changed, checkpoints at another step).
        detail: the first difference, when not identical.
    """

    stage: str
    delay: float
    progress: str
    after_kill: list[str] = field(default_factory=list)
    after_resume: list[str] = field(default_factory=list)
    steps_back: list[str] = field(default_factory=list)
    identical: bool = False
    restarts: int = 0
    differing: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.identical and not self.after_kill and not self.after_resume and not self.steps_back
        )


def _snapshot(folder: Path) -> frozenset[tuple[str, int, int]]:
    if not folder.exists():
        return frozenset()
    items = []
    for p in folder.rglob("*"):
        try:
            st = p.stat()
        except OSError:  # removed while listing
            continue
        if p.is_file():
            items.append((str(p), st.st_size, st.st_mtime_ns))
    return frozenset(items)


def _timed_reference(setup: StageSetup, work: Path) -> tuple[int, float]:
    """Run the stage to the end, watching its output folder.

    Returns:
        the number of changes of its outputs seen (polling every 50 ms) and its wall time.
    """
    exe = shutil.which(CLI) or CLI
    out = work / setup.output
    start = time.perf_counter()
    proc = subprocess.Popen(
        [exe, *setup.args],
        cwd=work,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    changes, seen = 0, frozenset()
    while proc.poll() is None:
        now = _snapshot(out)
        if now != seen:
            changes += 1
            seen = now
        time.sleep(0.05)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"labelbridge {' '.join(setup.args)} failed ({proc.returncode}): {proc.stderr.read()[-2000:]}"
        )  # type: ignore[union-attr]
    return changes, total


def kill_resume_trials(
    stage: str, scratch: Path, *, trials: int = 5, seed: int = 0
) -> tuple[list[TrialResult], float]:
    """SIGKILL ``stage`` at ``trials`` random moments, resuming in between; compare with an
    uninterrupted run.

    The trials are chained in one working folder: each kill interrupts the re-run that
    followed the previous kill, so later trials also test resuming a run that was itself
    resumed. The uninterrupted run is watched first: its output folder changes ``N``
    times (polled every 50 ms). Each kill comes a random 0-0.3 s after a random change
    ``1..N*r`` of the running command's outputs (``r``: share of trials left, as the
    remaining work shrinks), so the moments follow the work, not the machine's load. A
    run that finishes before its kill is started again from scratch (so every trial is a
    real kill). After each kill the outputs are audited (temporary files and
    a torn manifest tail allowed) and every training checkpoint's global step is checked
    against the one before (it must never go back: a restart from scratch would); after
    the final resume the outputs are audited strictly and compared with the
    uninterrupted run.

    Returns:
        one :class:`TrialResult` per kill and the uninterrupted run's wall time.
    """
    import random

    rng = random.Random(seed)
    ref_work, work = scratch / "reference", scratch / "interrupted"
    ref_work.mkdir(parents=True)
    work.mkdir(parents=True)
    setup = SETUPS[stage](ref_work)
    SETUPS[stage](work)
    changes, total = _timed_reference(setup, ref_work)
    reference = stage_fingerprint(stage, ref_work / setup.output)
    output = work / setup.output
    results: list[TrialResult] = []
    attempts = restarts = 0
    while len(results) < trials and attempts < 3 * trials:
        attempts += 1
        share = (trials - len(results)) / trials
        at_change = rng.randint(1, max(1, round(changes * share)))
        before, logs = _last_checkpoints(output), _csv_logs(output)
        delay = run_and_kill(setup, work, changes=at_change, jitter=rng.uniform(0.0, 0.3))
        if delay is None:  # finished first: start over, so the next kill is a real one
            shutil.rmtree(output, ignore_errors=True)
            restarts += 1
            continue
        after = _last_checkpoints(output)
        back = [
            f"{k}: step {before[k]} -> {after.get(k)}"
            for k in before
            if before[k] is not None and (after.get(k) is None or after[k] < before[k])
        ]
        back += continuation_problems(output, before, logs)
        problems = audit_outputs(output, allow_temp=True)
        results.append(
            TrialResult(stage, round(delay, 2), progress(stage, output), problems, steps_back=back)
        )
        results[-1].restarts = restarts
    before, logs = _last_checkpoints(output), _csv_logs(output)
    run_to_end(setup, work)
    after = _last_checkpoints(output)
    final_back = continuation_problems(output, before, logs)
    final_back += [
        f"{k}: step {before[k]} -> {after.get(k)}"
        for k in before
        if before[k] is not None and (after.get(k) or -1) < before[k]
    ]
    final_problems = audit_outputs(output)
    got = stage_fingerprint(stage, output)
    identical = got == reference
    detail = "" if identical else _diff(reference, got)
    differing = _count_diff(reference, got)
    for r in results:
        r.after_resume = final_problems
        r.identical = identical
        r.differing = differing
        r.detail = detail
    if results:
        results[-1].steps_back += final_back
    return results, total


def _count_diff(a: Any, b: Any) -> int:
    """Leaf entries that differ between two nested dicts (missing counts as different)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return sum(_count_diff(a.get(k), b.get(k)) for k in set(a) | set(b))
    return int(a != b)


def _diff(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _diff(a.get(k), b.get(k), f"{path}/{k}")
        return ""
    return f"{path}: uninterrupted {str(a)[:200]} vs resumed {str(b)[:200]}"


# ============================================================================ resource faults
class OutOfMemoryAt:
    """Wraps a model; its forward raises a CUDA-style out-of-memory error for inputs of
    height ``height`` with more than ``max_batch`` images (``max_batch=0``: always)."""

    def __init__(self, model: Any, *, height: int, max_batch: int) -> None:
        import torch

        class _Wrapped(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner
                self.num_classes = inner.num_classes

            def forward(self, x: Any) -> Any:
                if x.shape[-2] == height and x.shape[0] > max_batch:
                    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
                return self.inner(x)

        self.module = _Wrapped(model)


def oom_fallback_case(scratch: Path) -> CaseResult:
    """Scale 2.0 runs out of memory when batched: it must fall back to one image per
    pass, keep the scale (labels equal those of a run without the fault) and list the
    fallback in the report."""
    from labelbridge.pseudo.run import Teacher, run_pseudo_label

    data = make_camvid_images(scratch / "data", count=3, size=(16, 12))
    base = tiny_teacher()
    changes = {"tta": {"flip": True, "scales": [1.0, 2.0]}}
    run_pseudo_label(pseudo_config(data, scratch / "ref", **changes), teacher=base)
    faulty = Teacher(
        OutOfMemoryAt(base.model, height=24, max_batch=1).module.eval(),
        base.taxonomy,
        base.description,
    )
    try:
        (summary,) = run_pseudo_label(
            pseudo_config(data, scratch / "out", **changes), teacher=faulty
        )
    except Exception as exc:  # noqa: BLE001
        return CaseResult(
            "resource",
            "TTA scale out of memory: fallback",
            "-",
            FAILED,
            f"{type(exc).__name__}: {exc}",
        )
    fallbacks = summary.report.get("fallbacks", [])
    same = label_files(scratch / "out" / "cv") == label_files(scratch / "ref" / "cv")
    if not same or [f["scale"] for f in fallbacks] != [2.0]:
        return CaseResult(
            "resource",
            "TTA scale out of memory: fallback",
            "-",
            FAILED,
            f"same labels: {same}; fallbacks: {fallbacks}",
        )
    return CaseResult(
        "resource",
        "TTA scale out of memory: fallback",
        "-",
        RECORDED_FALLBACK,
        json.dumps(fallbacks),
    )


def oom_no_fallback_case(scratch: Path) -> CaseResult:
    """Scale 2.0 runs out of memory even with one image on the CPU: the run must stop with
    an error naming the scale, and write no label."""
    from labelbridge.pseudo.run import Teacher, run_pseudo_label

    data = make_camvid_images(scratch / "data", count=2, size=(16, 12))
    base = tiny_teacher()
    faulty = Teacher(
        OutOfMemoryAt(base.model, height=24, max_batch=0).module.eval(),
        base.taxonomy,
        base.description,
    )
    name = "TTA scale out of memory: nothing left to try"
    try:
        run_pseudo_label(
            pseudo_config(data, scratch / "out", tta={"flip": True, "scales": [1.0, 2.0]}),
            teacher=faulty,
        )
    except Exception as exc:  # noqa: BLE001
        written = label_files(scratch / "out" / "cv") if (scratch / "out" / "cv").is_dir() else {}
        if "2.0" in str(exc) and "out of memory" in str(exc) and not written:
            return CaseResult(
                "resource", name, "-", CLEAR_ERROR, f"{type(exc).__name__}: {str(exc)[:200]}"
            )
        return CaseResult(
            "resource",
            name,
            "-",
            FAILED,
            f"{type(exc).__name__}: {exc}; written: {sorted(written)}",
        )
    return CaseResult("resource", name, "-", FAILED, "no error: the scale was dropped silently")


def disk_full_case(scratch: Path) -> CaseResult:
    """The disk fills up after a few label files: the run must fail with a clear error,
    leave a manifest that parses and lists only complete files, and resume to the same
    bytes as an undisturbed run."""
    import errno
    from unittest import mock

    from labelbridge import files as writer_mod
    from labelbridge.pseudo.manifest import read_manifest
    from labelbridge.pseudo.run import run_pseudo_label

    name = "disk full while writing"
    data = make_camvid_images(scratch / "data", count=6, size=(16, 12))
    run_pseudo_label(pseudo_config(data, scratch / "ref"), teacher=tiny_teacher())
    real_open = open
    count = {"n": 0}

    def full_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and str(path).endswith(writer_mod.TEMP_SUFFIX):
            count["n"] += 1
            if count["n"] >= 4:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    out = scratch / "out"
    try:
        with mock.patch.object(writer_mod, "open", full_open, create=True):
            run_pseudo_label(pseudo_config(data, out), teacher=tiny_teacher())
    except UserError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001
        return CaseResult(
            "resource", name, "-", FAILED, f"{type(exc).__name__} without a user message: {exc}"
        )
    else:
        return CaseResult("resource", name, "-", FAILED, "no error raised")
    problems = audit_outputs(out)
    try:
        records = read_manifest(out / "cv" / "manifest.jsonl")
    except Exception as exc:  # noqa: BLE001
        return CaseResult("resource", name, "-", FAILED, f"manifest corrupted: {exc}")
    run_pseudo_label(pseudo_config(data, out), teacher=tiny_teacher())
    same = label_files(out / "cv") == label_files(scratch / "ref" / "cv")
    if problems or not same or "space" not in message.lower():
        return CaseResult(
            "resource",
            name,
            "-",
            FAILED,
            f"problems {problems}; resumed identical: {same}; {message}",
        )
    return CaseResult(
        "resource", name, "-", CLEAR_ERROR, f"{message} ({len(records)} records kept)"
    )


RESOURCE_CASES: dict[str, Callable[[Path], CaseResult]] = {
    "oom_fallback": oom_fallback_case,
    "oom_no_fallback": oom_no_fallback_case,
    "disk_full": disk_full_case,
}


def expected_outcome(corruption: str, mode: str) -> str:
    """What a bad-input case must give: a clear error under ``raise`` and for an empty
    split; a recorded skip otherwise."""
    return CLEAR_ERROR if mode == "raise" or corruption == "empty_split" else RECORDED_SKIP
