"""Running the plan: each stage once, recorded in ``state.json``, resumed on re-run.

Started several times over (``srun`` tasks, torchrun processes), every process runs every
stage (training is one DDP run of them all; pseudo-labelling is sharded between them),
and process 0 alone records the run: ``state.json``, ``pipeline.yaml``, the stages'
configs and the results. After a pseudo-label stage without a process group, each
process waits for the other shards (:func:`~labelbridge.pseudo.wait.wait_for_shards`)
before it goes on, so that no student reads, and no state records, labels still being
made; with a process group the stage's own barrier does that."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelbridge.config.base import dump_config
from labelbridge.config.pipeline import PipelineConfig, TrainingSection
from labelbridge.config.pseudo import PseudoLabelConfig, TeacherConfig
from labelbridge.config.train import TrainConfig, TrainDatasetConfig
from labelbridge.errors import ConfigError
from labelbridge.files import write_json_atomic, write_text_atomic
from labelbridge.pipeline.evaluate import evaluate_checkpoint, file_identity
from labelbridge.pipeline.plan import (
    build_pseudo_config,
    build_train_config,
    given_teacher,
    lead_target,
    plan_stages,
    student_datasets,
    train_checkpoint,
)
from labelbridge.pipeline.results import (
    RESULTS_JSON,
    RESULTS_MD,
    ModelResult,
    PipelineResult,
    format_table,
    read_pseudo_stats,
    results_markdown,
    student_title,
)
from labelbridge.pipeline.state import (
    RESOLVED_CONFIG,
    STATE_FILE,
    RunState,
    earlier_fingerprints,
    stage_fingerprint,
)
from labelbridge.sharding import launcher_shard

log = logging.getLogger(__name__)

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
        process = launcher_shard()
        #: Whether this process records the run (process 0 of those started together).
        self.records = process.index == 0
        if not self.records:
            log.info(
                "process %s of this run: it runs every stage with the others, process 0 "
                "records the run's state and results",
                process,
            )
        self.state = RunState(self.run_dir / STATE_FILE, record=self.records)
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
            if self.records:
                dump_config(train_cfg, self.run_dir / name / "train_config.yaml")
            result = self.train_fn(train_cfg)
            return {"checkpoint": train_checkpoint(result, name)}

        return str(self.stage(name, train_cfg.model_dump(mode="json"), work)["checkpoint"])

    def pseudo(self, name: str, teacher: TeacherConfig, arm: str) -> Path:
        out = self.run_dir / name
        pseudo_cfg = build_pseudo_config(self.cfg, teacher, priors=arm == "priors", output=out)

        def work() -> dict[str, Any]:
            from labelbridge.pseudo.wait import wait_for_shards

            out.mkdir(parents=True, exist_ok=True)
            if self.records:
                dump_config(pseudo_cfg, out / "pseudo_config.yaml")
            self.pseudo_fn(pseudo_cfg)
            # sharded without a process group: the others may still be labelling
            wait_for_shards(pseudo_cfg, launcher_shard(), timeout=self.cfg.pseudo.shard_wait)
            return {"output": str(out)}

        ident = pseudo_cfg.model_dump(mode="json")
        ident["teacher_file"] = file_identity(teacher.checkpoint)
        return Path(self.stage(name, ident, work)["output"])

    def evaluate(
        self, name: str, checkpoint: str | None, teacher: TeacherConfig | None
    ) -> dict[str, Any]:
        ident = {
            "model": file_identity(checkpoint)
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
        if self.records:
            dump_config(cfg, self.run_dir / RESOLVED_CONFIG)
        rows: list[ModelResult] = []
        pseudo_stats: dict[str, dict[str, dict[str, float | None]]] = {}
        extras = [e.name for e in cfg.extras]

        given = given_teacher(cfg)
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
        pseudo_dirs: dict[str | None, Path] = {}
        section = cfg.student_section
        for stage in plan_stages(cfg):
            if stage.kind == "pseudo":
                assert stage.arm is not None
                pseudo_dirs[stage.arm] = self.pseudo(stage.name, teachers[stage.arm], stage.arm)
                pseudo_stats[stage.name] = read_pseudo_stats(pseudo_dirs[stage.arm], extras)
            elif stage.kind == "train_student":
                target = stage.target or "hard"
                datasets = student_datasets(cfg, pseudo_dirs.get(stage.arm), target)
                ckpt = self.train(stage.name, section, datasets)
                ev = self.evaluate(stage.name, ckpt, None)
                title = student_title(stage.arm, target)
                if cfg.iterations > 1 and stage.arm is not None:
                    title += f", round {stage.iteration}"
                rows.append(
                    ModelResult(
                        title,
                        stage.iteration,
                        stage.arm,
                        ckpt,
                        ev["miou"],
                        ev["per_class_iou"],
                        target=target,
                    )
                )
                if stage.arm is not None and target == lead_target(cfg):
                    teachers[stage.arm] = TeacherConfig(checkpoint=ckpt)

        evaluation = [e.report_name for e in cfg.evaluation_sets]
        table = format_table(rows, evaluation)
        md_path, json_path = self.run_dir / RESULTS_MD, self.run_dir / RESULTS_JSON
        if self.records:
            write_text_atomic(md_path, results_markdown(cfg, table, pseudo_stats))
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
            self.run_dir,
            rows,
            evaluation,
            pseudo_stats,
            table,
            md_path,
            json_path,
            self.executed,
            recorded=self.records,
        )


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
        The results table and where it was written (by process 0 of a run started
        several times over; see the module doc).

    Raises:
        ConfigError: the run folder holds stages done with another configuration.
        ShardsUnfinishedError: sharded without a process group, the other shards of a
            pseudo-label stage did not finish within ``pseudo.shard_wait`` seconds.
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
