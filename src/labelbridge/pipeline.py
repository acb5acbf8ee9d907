"""The whole method in one run folder: teacher -> pseudo-labels -> student (-> source
fine-tune) -> further iterations, then one table of every model on every evaluation set.

Run folder layout (``cfg.run_dir``)::

    pipeline.yaml                  the resolved config of the run
    state.json                     completed stages (atomic writes)
    teacher/                       teacher training run (absent for a given teacher)
    iter1/pseudo_priors/<extra>/   pseudo-labels of round 1, priors arm
    iter1/student_priors/          student training run (incl. its fine-tune stage)
    iter1/pseudo_no_priors/ ...    the Naive Student arm, likewise
    iter2/...                      further rounds: each arm's student teaches its next round
    results.md, results.json       mIoU of teacher and students on every evaluation set

Every stage records its config fingerprint in ``state.json`` when it starts and its
outputs when it finishes. A re-run skips finished stages and re-enters an interrupted
one (training and pseudo-labelling resume from their own checkpoints / manifests). A
finished or started stage whose config changed is an error, never silently reused;
evaluations are recomputed when their inputs changed.

Example:
    >>> from labelbridge.config.pipeline import load_pipeline_config
    >>> result = run_pipeline(load_pipeline_config("configs/demo.yaml"))  # doctest: +SKIP
    >>> print(result.table)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelbridge.config.base import canonical_paths, dump_config
from labelbridge.config.pipeline import PipelineConfig, TrainingSection
from labelbridge.config.pseudo import DatasetEntry, PseudoLabelConfig, TeacherConfig
from labelbridge.config.train import TrainConfig, TrainDatasetConfig, ValDatasetConfig
from labelbridge.errors import CheckpointError, ConfigError
from labelbridge.files import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATE_VERSION = 1
RESULTS_MD = "results.md"
RESULTS_JSON = "results.json"
RESOLVED_CONFIG = "pipeline.yaml"

#: Row titles of the results table per arm.
ARM_TITLES: dict[str, str] = {
    "priors": "student with priors",
    "no_priors": "Naive Student (no priors)",
}


# --------------------------------------------------------------------------- state


def legacy_fingerprint(data: Any) -> str:
    """The fingerprint of runs made before paths were canonicalised (raw strings);
    still accepted so those runs resume."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint(data: Any) -> str:
    """Short stable hash of JSON-able data (a stage's config); paths of existing files
    count by where they lead, not how they are spelt (relative or absolute)."""
    return legacy_fingerprint(canonical_paths(data))


def stage_fingerprint(stage_config: Any) -> str:
    """The fingerprint of a stage's config without its top-level ``output``: the stage's
    own folder (``<run_dir>/<stage>``) is its identity already, and it is created by the
    stage, so counting it would change the fingerprint between start and re-run."""
    if isinstance(stage_config, dict):
        stage_config = {k: v for k, v in stage_config.items() if k != "output"}
    return fingerprint(stage_config)


def earlier_fingerprints(stage_config: Any) -> set[str]:
    """Fingerprints earlier versions recorded for the same stage config (still accepted,
    so their runs resume): raw strings, and paths canonicalised with ``output`` kept."""
    found = {legacy_fingerprint(stage_config)}
    if isinstance(stage_config, dict) and "output" in stage_config:
        rest = {k: v for k, v in stage_config.items() if k != "output"}
        found.add(legacy_fingerprint({**canonical_paths(rest), "output": stage_config["output"]}))
    return found


class RunState:
    """``<run_dir>/state.json``: ``{"version": 1, "stages": {name: record}}``.

    A record is ``{"status": "running" | "done", "fingerprint": str, "outputs": {...},
    "started": unix time, "finished": unix time}``. Every change is written atomically.

    Args:
        path: the state file.

    Raises:
        ConfigError: the file exists but is not a state file of this version.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.stages: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"{self.path}: unreadable run state ({exc}); remove it to start over"
                ) from None
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ConfigError(
                    f"{self.path}: not a labelbridge run state of version {STATE_VERSION}"
                )
            self.stages = dict(data.get("stages", {}))

    def save(self) -> None:
        write_json_atomic(self.path, {"version": STATE_VERSION, "stages": self.stages})

    def is_done(self, name: str) -> bool:
        return self.stages.get(name, {}).get("status") == "done"

    def outputs(self, name: str) -> dict[str, Any]:
        return dict(self.stages.get(name, {}).get("outputs", {}))

    def start(self, name: str, fp: str) -> None:
        self.stages[name] = {
            "status": "running",
            "fingerprint": fp,
            "outputs": {},
            "started": time.time(),
        }
        self.save()

    def finish(self, name: str, outputs: dict[str, Any]) -> None:
        record = self.stages.setdefault(name, {})
        record.update(status="done", outputs=outputs, finished=time.time())
        self.save()


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Stage:
    """One step of the run.

    Attributes:
        name: key in ``state.json`` and sub-folder of the run (``iter1/student_priors``).
        kind: ``train_teacher``, ``pseudo``, ``train_student`` or ``evaluate``.
        iteration: round (0 for the teacher).
        arm: ``priors`` / ``no_priors`` (``None`` for the teacher).
    """

    name: str
    kind: str
    iteration: int
    arm: str | None = None


def plan_stages(cfg: PipelineConfig) -> list[Stage]:
    """The stages of a run in execution order (evaluations excluded)."""
    stages = []
    if cfg.teacher.train is not None:
        stages.append(Stage("teacher", "train_teacher", 0))
    for it in range(1, cfg.iterations + 1):
        for arm in cfg.pseudo.arms:
            stages.append(Stage(f"iter{it}/pseudo_{arm}", "pseudo", it, arm))
            stages.append(Stage(f"iter{it}/student_{arm}", "train_student", it, arm))
    return stages


# --------------------------------------------------------------------------- builders


def build_train_config(
    section: TrainingSection,
    *,
    taxonomy: str,
    datasets: list[TrainDatasetConfig],
    val: list[ValDatasetConfig],
    output: Path,
) -> TrainConfig:
    """A complete training config from a pipeline training section."""
    data = section.model_dump(mode="json", exclude={"taxonomy", "datasets", "val", "output"})
    data.update(
        taxonomy=taxonomy,
        datasets=[d.model_dump(mode="json") for d in datasets],
        val=[v.model_dump(mode="json") for v in val],
        output=str(output),
    )
    return TrainConfig.model_validate(data)


def student_datasets(cfg: PipelineConfig, pseudo_dir: Path) -> list[TrainDatasetConfig]:
    """Source datasets (ground truth) plus every extra read with its pseudo-labels."""
    out = [d.model_copy() for d in cfg.source]
    for extra in cfg.extras:
        out.append(
            TrainDatasetConfig(
                name=extra.reader,
                root=extra.root,
                split=extra.split,
                labels={"pseudo": str(pseudo_dir / extra.name)},
                weight=extra.weight,
                limit=extra.limit,
                source=False,
            )
        )
    return out


def build_pseudo_config(
    cfg: PipelineConfig, teacher: TeacherConfig, *, priors: bool, output: Path
) -> PseudoLabelConfig:
    """The pseudo-labelling config of one arm of one round."""
    return PseudoLabelConfig(
        teacher=teacher,
        datasets=[
            DatasetEntry(
                name=e.name,
                reader=e.reader,
                root=e.root,
                split=e.split,
                ontology=e.ontology,
                limit=e.limit,
            )
            for e in cfg.extras
        ],
        tta=cfg.pseudo.tta,
        priors=priors,
        outputs=cfg.pseudo.outputs,
        output=str(output),
        device=cfg.pseudo.device,
        batch_size=cfg.pseudo.batch_size,
        num_workers=cfg.pseudo.num_workers,
        threads=cfg.pseudo.threads,
    )


def _given_teacher(cfg: PipelineConfig) -> TeacherConfig | None:
    t = cfg.teacher
    if t.checkpoint is not None:
        return TeacherConfig(checkpoint=t.checkpoint)
    if t.model is not None:
        return TeacherConfig(model=t.model, weights=t.weights, taxonomy=t.taxonomy)
    return None


def _train_checkpoint(result: Any, stage: str) -> str:
    """The model a training run delivers: its final checkpoint (the best checkpoint of
    its last stage, i.e. of the fine-tune stage where there is one)."""
    for attr in ("final_checkpoint", "best_checkpoint"):
        path = getattr(result, attr, None)
        if path:
            return str(path)
    raise CheckpointError(f"training stage {stage!r} returned no checkpoint")


# --------------------------------------------------------------------------- results


@dataclass
class ModelResult:
    """One row of the results table.

    Attributes:
        model: row title (``teacher``, ``student with priors`` ...).
        iteration: round (0 = the teacher).
        arm: ``priors`` / ``no_priors`` / ``None``.
        checkpoint: the evaluated checkpoint (or teacher description).
        miou: ``{evaluation label: mIoU in [0, 1]}`` (``None`` where NaN).
        per_class_iou: ``{evaluation label: {class: IoU or None}}``.
    """

    model: str
    iteration: int
    arm: str | None
    checkpoint: str
    miou: dict[str, float | None] = field(default_factory=dict)
    per_class_iou: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced.

    Attributes:
        run_dir: the run folder.
        rows: teacher first, then each round's students.
        evaluation: the evaluation labels (table columns).
        pseudo_stats: ``{stage: {extra: {"changed_by_priors": share, "ignore": share}}}``.
        table: the Markdown table (also in ``results.md``).
        results_md: path of ``results.md``.
        results_json: path of ``results.json``.
        executed: stages run (or resumed) by this call; the others were skipped as done.
    """

    run_dir: Path
    rows: list[ModelResult]
    evaluation: list[str]
    pseudo_stats: dict[str, dict[str, dict[str, float | None]]]
    table: str
    results_md: Path
    results_json: Path
    executed: list[str] = field(default_factory=list)

    def row(self, iteration: int, arm: str | None) -> ModelResult:
        """The row of ``arm`` in round ``iteration`` (``arm=None``: the teacher)."""
        for r in self.rows:
            if r.iteration == iteration and r.arm == arm:
                return r
        raise KeyError(f"no result for iteration {iteration}, arm {arm!r}")


def _fmt(value: float | None, base: float | None) -> str:
    if value is None:
        return "n/a"
    text = f"{100 * value:.1f}"
    if base is not None:
        text += f" ({100 * (value - base):+.1f})"
    return text


def format_table(rows: list[ModelResult], evaluation: list[str]) -> str:
    """Markdown table: one row per model, mIoU x 100 per evaluation set; student rows
    also give the difference to the teacher."""
    teacher = next((r for r in rows if r.iteration == 0), None)
    header = "| model | round | " + " | ".join(f"{e} mIoU" for e in evaluation) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(evaluation)]
    for r in rows:
        cells = []
        for e in evaluation:
            base = None if teacher is None or r is teacher else teacher.miou.get(e)
            cells.append(_fmt(r.miou.get(e), base))
        lines.append(f"| {r.model} | {r.iteration} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pseudo_stats(folder: Path, extras: list[str]) -> dict[str, dict[str, float | None]]:
    stats: dict[str, dict[str, float | None]] = {}
    for name in extras:
        report = folder / name / "report.json"
        if not report.is_file():
            continue
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
            stats[name] = {
                "changed_by_priors": data["changed_by_priors"]["share_of_labelled"],
                "ignore": data["pixels"]["ignore_share"],
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: cannot read the pseudo-label report: %s", report, exc)
    return stats


# --------------------------------------------------------------------------- evaluation


def _load_model(checkpoint: str | None, teacher: TeacherConfig | None) -> tuple[Any, Any]:
    """``(model, taxonomy)`` of a checkpoint or of a given teacher config."""
    from labelbridge.models import load_model

    if checkpoint is None and teacher is None:
        raise ValueError("evaluate: give a checkpoint or a teacher")
    loaded = (
        load_model(checkpoint=checkpoint)
        if checkpoint is not None
        else load_model(
            checkpoint=teacher.checkpoint,
            spec=teacher.model,
            weights=teacher.weights,
            taxonomy=teacher.taxonomy,
            what="teacher",
        )
    )
    return loaded.model, loaded.taxonomy


def evaluate_checkpoint(
    cfg: PipelineConfig, *, checkpoint: str | None, teacher: TeacherConfig | None = None
) -> tuple[dict[str, float | None], dict[str, dict[str, float | None]]]:
    """mIoU (and per-class IoU) of one model on every evaluation set.

    Returns:
        ``({label: mIoU}, {label: {class: IoU}})``, values in ``[0, 1]`` or ``None``.
    """
    import torch

    from labelbridge.data import create_dataset
    from labelbridge.evaluation import evaluate_model
    from labelbridge.taxonomy import load_ontology

    model, taxonomy = _load_model(checkpoint, teacher)
    miou: dict[str, float | None] = {}
    per_class: dict[str, dict[str, float | None]] = {}
    with torch.inference_mode():
        for entry in cfg.evaluation_sets:
            dataset = create_dataset(entry.name, entry.root, entry.split, on_error=entry.on_error)
            ontology = load_ontology(entry.ontology) if entry.ontology else None
            metrics = evaluate_model(
                model,
                dataset,
                model_taxonomy=taxonomy,
                ontology=ontology,
                input_size=cfg.eval.input_size,
                batch_size=cfg.eval.batch_size,
                device=cfg.eval.device,
                limit=entry.limit,
                progress=True,
            )
            value = float(metrics.miou)
            miou[entry.report_name] = None if math.isnan(value) else value
            per_class[entry.report_name] = metrics.to_dict()["per_class_iou"]
    return miou, per_class


def _file_identity(path: str | None) -> list[Any]:
    if path is None:
        return []
    p = Path(path)
    st = p.stat() if p.exists() else None
    return [str(p.resolve()), st.st_size if st else None, st.st_mtime_ns if st else None]


# --------------------------------------------------------------------------- running


class _Runner:
    """Runs the stages of one pipeline config against its state file."""

    def __init__(
        self,
        cfg: PipelineConfig,
        *,
        train_fn: Callable[[TrainConfig], Any],
        pseudo_fn: Callable[[PseudoLabelConfig], Any],
        evaluate_fn: Callable[..., tuple[dict, dict]],
    ) -> None:
        self.cfg = cfg
        self.run_dir = cfg.run_path
        self.state = RunState(self.run_dir / STATE_FILE)
        self.train_fn, self.pseudo_fn, self.evaluate_fn = train_fn, pseudo_fn, evaluate_fn
        self.executed: list[str] = []

    def stage(
        self,
        name: str,
        stage_config: Any,
        fn: Callable[[], dict[str, Any]],
        *,
        derived: bool = False,
    ) -> dict:
        """Run ``fn`` unless ``name`` finished with the same config; return its outputs.

        Args:
            derived: the stage only derives numbers from finished stages (evaluation):
                recompute it when its config changed instead of refusing.

        Raises:
            ConfigError: a non-derived stage started or finished with another config.
        """
        fp = stage_fingerprint(stage_config)
        record = self.state.stages.get(name)
        if record is not None and record.get("fingerprint") in earlier_fingerprints(stage_config):
            record["fingerprint"] = fp  # a run made by an earlier version
        if record is not None and record.get("fingerprint") != fp and not derived:
            raise ConfigError(
                f"{self.state.path}: stage {name!r} was {'completed' if record.get('status') == 'done' else 'started'} "
                f"with a different configuration; use a new run_dir, or delete {self.run_dir / name} "
                f"and its entry in {self.state.path.name} to redo it (and every later stage)"
            )
        if (
            record is not None
            and record.get("status") == "done"
            and record.get("fingerprint") == fp
        ):
            log.info("stage %s: done, skipped", name)
            return self.state.outputs(name)
        log.info("stage %s: %s", name, "resuming" if record is not None else "starting")
        self.state.start(name, fp)
        self.executed.append(name)
        outputs = fn()
        self.state.finish(name, outputs)
        log.info("stage %s: done", name)
        return outputs

    # ------------------------------------------------------------------ stages
    def train(self, name: str, section: TrainingSection, datasets: list[TrainDatasetConfig]) -> str:
        train_cfg = build_train_config(
            section,
            taxonomy=self.cfg.taxonomy,
            datasets=datasets,
            val=self.cfg.val,
            output=self.run_dir / name,
        )

        def work() -> dict[str, Any]:
            (self.run_dir / name).mkdir(parents=True, exist_ok=True)
            dump_config(train_cfg, self.run_dir / name / "train_config.yaml")
            result = self.train_fn(train_cfg)
            return {"checkpoint": _train_checkpoint(result, name)}

        return str(self.stage(name, train_cfg.model_dump(mode="json"), work)["checkpoint"])

    def pseudo(self, name: str, teacher: TeacherConfig, arm: str) -> Path:
        out = self.run_dir / name
        pseudo_cfg = build_pseudo_config(self.cfg, teacher, priors=arm == "priors", output=out)

        def work() -> dict[str, Any]:
            out.mkdir(parents=True, exist_ok=True)
            dump_config(pseudo_cfg, out / "pseudo_config.yaml")
            self.pseudo_fn(pseudo_cfg)
            return {"output": str(out)}

        ident = pseudo_cfg.model_dump(mode="json")
        ident["teacher_file"] = _file_identity(teacher.checkpoint)
        return Path(self.stage(name, ident, work)["output"])

    def evaluate(
        self, name: str, checkpoint: str | None, teacher: TeacherConfig | None
    ) -> dict[str, Any]:
        ident = {
            "model": _file_identity(checkpoint)
            or (teacher.model_dump(mode="json") if teacher else None),
            "sets": [e.model_dump(mode="json") for e in self.cfg.evaluation_sets],
            "eval": self.cfg.eval.model_dump(mode="json"),
        }

        def work() -> dict[str, Any]:
            miou, per_class = self.evaluate_fn(self.cfg, checkpoint=checkpoint, teacher=teacher)
            return {"miou": miou, "per_class_iou": per_class}

        return self.stage(f"evaluate/{name}", ident, work, derived=True)

    # ------------------------------------------------------------------ the run
    def run(self) -> PipelineResult:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, self.run_dir / RESOLVED_CONFIG)
        rows: list[ModelResult] = []
        pseudo_stats: dict[str, dict[str, dict[str, float | None]]] = {}
        extras = [e.name for e in cfg.extras]

        given = _given_teacher(cfg)
        if given is None:
            section = cfg.teacher_section
            assert section is not None
            teacher_ckpt: str | None = self.train("teacher", section, list(cfg.source))
            teacher_cfg = TeacherConfig(checkpoint=teacher_ckpt)
        else:
            teacher_ckpt, teacher_cfg = given.checkpoint, given
        ev = self.evaluate("teacher", teacher_ckpt, None if teacher_ckpt else teacher_cfg)
        rows.append(
            ModelResult(
                "teacher",
                0,
                None,
                teacher_ckpt or str(teacher_cfg.describe()),
                ev["miou"],
                ev["per_class_iou"],
            )
        )

        teachers = {arm: teacher_cfg for arm in cfg.pseudo.arms}
        section = cfg.student_section
        for it in range(1, cfg.iterations + 1):
            for arm in cfg.pseudo.arms:
                pseudo_name = f"iter{it}/pseudo_{arm}"
                pseudo_dir = self.pseudo(pseudo_name, teachers[arm], arm)
                pseudo_stats[pseudo_name] = _pseudo_stats(pseudo_dir, extras)
                student_name = f"iter{it}/student_{arm}"
                ckpt = self.train(student_name, section, student_datasets(cfg, pseudo_dir))
                ev = self.evaluate(student_name, ckpt, None)
                title = ARM_TITLES[arm] + (f", round {it}" if cfg.iterations > 1 else "")
                rows.append(ModelResult(title, it, arm, ckpt, ev["miou"], ev["per_class_iou"]))
                teachers[arm] = TeacherConfig(checkpoint=ckpt)

        evaluation = [e.report_name for e in cfg.evaluation_sets]
        table = format_table(rows, evaluation)
        md_path, json_path = self.run_dir / RESULTS_MD, self.run_dir / RESULTS_JSON
        write_text_atomic(md_path, _results_markdown(cfg, table, pseudo_stats))
        write_json_atomic(
            json_path,
            {
                "taxonomy": cfg.taxonomy,
                "evaluation": evaluation,
                "rows": [r.__dict__ for r in rows],
                "pseudo_stats": pseudo_stats,
            },
        )
        return PipelineResult(
            self.run_dir, rows, evaluation, pseudo_stats, table, md_path, json_path, self.executed
        )


def _results_markdown(
    cfg: PipelineConfig, table: str, pseudo_stats: dict[str, dict[str, dict]]
) -> str:
    lines = [
        f"# Results: {cfg.run_dir}",
        "",
        f"mIoU (%) in taxonomy `{cfg.taxonomy}`; sets with an ontology are scored through its "
        "projection. Student rows give the difference to the teacher in brackets.",
        "",
        table,
        "",
    ]
    if pseudo_stats:
        lines += [
            "## Pseudo-labels",
            "",
            "| stage | extra dataset | changed by priors | ignore |",
            "|---|---|---:|---:|",
        ]
        for stage, per_extra in pseudo_stats.items():
            for extra, s in per_extra.items():
                changed = s.get("changed_by_priors")
                ignore = s.get("ignore")
                lines.append(
                    f"| {stage} | {extra} | "
                    f"{'n/a' if changed is None else f'{100 * changed:.1f}%'} | "
                    f"{'n/a' if ignore is None else f'{100 * ignore:.1f}%'} |"
                )
        lines.append("")
    return "\n".join(lines)


def run_pipeline(
    cfg: PipelineConfig,
    *,
    train_fn: Callable[[TrainConfig], Any] | None = None,
    pseudo_fn: Callable[[PseudoLabelConfig], Any] | None = None,
    evaluate_fn: Callable[..., tuple[dict, dict]] | None = None,
) -> PipelineResult:
    """Run (or resume) the whole pipeline of ``cfg`` in ``cfg.run_dir``.

    Args:
        cfg: the validated config.
        train_fn: training entry point (default
            :func:`labelbridge.engine.train.run_training`); returns an object with
            ``final_checkpoint``.
        pseudo_fn: pseudo-labelling entry point (default
            :func:`labelbridge.pseudo.run.run_pseudo_label`, with progress on stderr).
        evaluate_fn: ``(cfg, checkpoint=..., teacher=...) -> ({label: mIoU}, {label:
            {class: IoU}})`` (default :func:`evaluate_checkpoint`).

    Returns:
        The results table and where it was written.

    Raises:
        ConfigError: the run folder holds stages done with another configuration.
        UserError: any user error of a stage (bad dataset file, mapping, checkpoint).
    """
    if train_fn is None:
        from labelbridge.engine.train import run_training

        train_fn = run_training
    if pseudo_fn is None:
        from labelbridge.pseudo.run import run_pseudo_label

        pseudo_fn = functools.partial(run_pseudo_label, progress=True)
    if cfg.threads is not None:
        import torch

        torch.set_num_threads(cfg.threads)
    runner = _Runner(
        cfg, train_fn=train_fn, pseudo_fn=pseudo_fn, evaluate_fn=evaluate_fn or evaluate_checkpoint
    )
    return runner.run()
