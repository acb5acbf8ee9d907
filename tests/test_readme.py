"""Every ``labelbridge`` command of the README's tour runs, in README order, in a scratch
folder laid out like the repository (``configs/`` beside ``../shared``).

Commands run as written, with extra arguments appended (never removed) only to make them
small: fewer images, fewer steps, a tiny model. The set-up commands (`pip install ... &&
labelbridge demo`, `python -m pytest`) run in ``.ci/run``; the multi-GPU example is
exercised by the 2-process DDP test of the training engine.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from shared_paths import REPO, SHARED

README = REPO / "README.md"


def sets(*assignments: str) -> list[str]:
    """``--set`` arguments for config overrides."""
    return [arg for a in assignments for arg in ("--set", a)]


#: A tiny, short training schedule (appended to the README's train-like commands).
TINY_TRAIN = sets(
    "resize=[96,72]", "augment.crop=[48,64]", "batch_size=2", "val_batch_size=2", "epochs=1",
    "steps_per_epoch=2", "val.0.limit=2", "num_workers=0", "trainer.accelerator=cpu",
)  # fmt: skip
#: The tiny model instead of the configs' ESPNetv2 (no encoder learning rate for it).
TINY_MODEL = sets(
    "model.spec=tiny", "model.weights=null", "model.classifier_from=null",
    "optimizer.encoder_lr=null",
)  # fmt: skip

#: Appended to a command (matched by prefix) so it runs in seconds.
QUICK: dict[str, list[str]] = {
    "labelbridge evaluate --checkpoint ../shared/weights": ["--limit", "2"],
    "labelbridge pseudo-label configs/pseudo_camvid_idd_to_cityscapes.yaml": [
        *sets("datasets.0.limit=2", "datasets.1.limit=1", "datasets.2.limit=1", "tta.scales=[0.5]",
              "tta.flip=false", "outputs.previews=1", "device=cpu"),
        "--no-progress",
    ],
    "labelbridge train configs/camvid_teacher.yaml": TINY_MODEL + TINY_TRAIN,
    "labelbridge pseudo-label configs/pseudo_idd_to_camvid.yaml": [
        *sets("datasets.0.limit=2", "tta.scales=[1.0]", "tta.flip=false", "outputs.previews=1",
              "device=cpu"),
        "--no-progress",
    ],
    "labelbridge train configs/student_camvid_idd.yaml": TINY_MODEL + TINY_TRAIN
    + sets("finetune.epochs=1", "datasets.1.limit=2", "val.1.limit=2"),
    "labelbridge evaluate --checkpoint runs/": ["--limit", "2"],
    "labelbridge distill configs/distill_espnetv2_camvid_idd.yaml": TINY_TRAIN
    + sets("student.spec=tiny", "student.weights=null", "losses.feat=0.0", "target_batch_size=2",
           "source.0.limit=2", "target.0.limit=2", "val.1.limit=2"),
    "labelbridge pipeline configs/demo.yaml": sets(  # the world of a quick demo, a new run folder
        "run_dir=labelbridge_demo/pipeline_run", "teacher.train.epochs=1",
        "teacher.train.steps_per_epoch=2", "student.epochs=1", "student.steps_per_epoch=2",
        "finetune.epochs=1", "pseudo.tta.scales=[1.0]",
    ),
}  # fmt: skip
#: Replaced inside a command to make it small.
REPLACE = {
    "--sample 50": "--sample 2",
    "--input-size 960x704 --out camvid_suggested": "--input-size 480x352 --out camvid_suggested",
}
#: Not run here, and why.
NOT_RUN = {
    "--set trainer.devices=4": "needs 4 devices; the DDP path is tested with 2 CPU processes",
    "--head argmax --out export/espnetv2_ids": "a second ESPNetv2 capture (a minute); the "
    "argmax head runs through the CLI in tests/cli/test_export_cli.py",
    "/data/nuimages": "needs the nuImages release; prepare and reader run on published-layout "
    "fixtures in tests/test_reader_nuimages.py and tests/test_prepare.py",
}


def readme_commands() -> list[str]:
    """``labelbridge ...`` command lines of the README's bash blocks, continuations joined."""
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip() if not line.strip().startswith("#") else ""
            if line.startswith("labelbridge "):
                commands.append(re.sub(r"\s+", " ", line))
    return commands


def quick_version(command: str) -> list[str]:
    for old, new in REPLACE.items():
        command = command.replace(old, new)
    args = shlex.split(command)
    for prefix, extra in QUICK.items():
        if command.startswith(prefix):
            return args + extra
    return args


def test_readme_lists_the_tour():
    cmds = readme_commands()
    assert len(cmds) >= 15
    for needed in (
        "ontology check",
        "pseudo-label",
        "train",
        "evaluate",
        "predict",
        "pipeline",
        "distill",
        "ontology suggest",
    ):
        assert any(needed in c for c in cmds), needed


@pytest.mark.shared
def test_readme_tour_runs(tmp_path: Path):
    if not (SHARED / "data").is_dir() or not (SHARED / "weights").is_dir():
        pytest.skip(f"needs {SHARED} (real data and weights)")
    work = tmp_path / "repo"
    work.mkdir()
    (work / "configs").symlink_to(REPO / "configs")
    (tmp_path / "shared").symlink_to(SHARED)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONWARNINGS": "ignore"}

    def run(args: list[str]) -> subprocess.CompletedProcess:
        proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (
            f"{' '.join(args)}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
        )
        return proc

    ran = []
    for command in readme_commands():
        if any(marker in command for marker in NOT_RUN):
            continue
        if command.startswith("labelbridge pipeline configs/demo.yaml"):
            # the pipeline config of the demo needs the demo's world: render a quick one
            run(["labelbridge", "demo", "--quick", "--out", "labelbridge_demo"])
        run(quick_version(command))
        ran.append(command)
    assert (work / "idd_to_cityscapes.png").stat().st_size > 10_000
    assert (work / "camvid_suggested.yaml").is_file()
    assert any((work / "preds").glob("*.png"))
    assert len(ran) >= 15
