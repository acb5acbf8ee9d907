"""Bad configuration (:data:`CLI_CASES`, :func:`run_cli_case`): mappings, stage configs,
checkpoints, run through ``labelbridge ...`` in a subprocess; a clear error is exit
status 2, one ``error:`` paragraph naming the file and the problem, no traceback.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .corruptions import layout_copy, truncate
from .outcomes import CLEAR_ERROR, FAILED, CaseResult
from .pseudo_cases import PSEUDO_MAPPING, tiny_checkpoint
from .stages import run_cli, setup_train


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
