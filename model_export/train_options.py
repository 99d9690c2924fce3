"""What a ``model-export train`` run is asked to do: its options, their defaults (the CLI
declares its flags from these, so the two cannot drift apart), the ``--quick`` smoke
test, and the checks that turn a wrong combination into a clear error before any work.
Light to import: the CLI reads the defaults without loading the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from edge.errors import EdgeError

LOSSES = ("auto", "triplet", "distill", "both")
# embedding: the student's unit embedding to the teacher's, centred and re-normalised;
# distance: the pairwise distances of both; centred: the student's raw output to the
# teacher's unit embedding minus its mean, not re-normalised (the teacher's own metric
# space), the bundle then compares raw outputs (model_export.live_teacher.space_targets)
DISTILL = ("embedding", "distance", "centred")
# online triplet mining in each batch (model_export.losses.mine runs them)
MINING = ("batch-hard", "semi-hard")
INITS = ("scratch", "teacher")


class TrainError(EdgeError):
    """Training cannot start or go on."""


@dataclass(frozen=True, slots=True)
class TrainOptions:
    data: Path
    out: Path
    teacher: Path | None = None
    loss: str = "auto"  # auto: both with a teacher, triplet without
    epochs: int = 40
    people_per_batch: int = 32
    images_per_person: int = 4
    mining: str = "batch-hard"
    margin: float = 0.2
    distill: str = "embedding"
    distill_weight: float = 1.0
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    width: float = 0.5
    init: str = "scratch"  # or "teacher": cut out of the teacher's encoder (model_export.prune)
    keep: float | dict[int, float] = 0.33  # init="teacher": the fraction of channels kept
    # a cut of dlib's ResNet: inside each block, one fraction or one per stage height
    # (model_export.resnet_cut)
    inner_keep: float | dict[int, float] = 0.5
    stem_kernel: int = 7  # a cut of dlib's ResNet: its first convolution's kernel
    # a cut of a chain (SFace): its blocks left out (None: CHAIN_DROP)
    drop_blocks: tuple[str, ...] | None = None
    stem_stride: int = 1  # 2: the cut's first convolution at stride 2 (model_export.prune)
    scale: int = 1  # 2: the whole cut at half resolution (model_export.prune)
    refit: bool = False  # init="teacher": refit the cut to the teacher (model_export.reconstruct)
    teacher_in_loop: bool = False  # init="teacher": the teacher labels every crop (live_teacher)
    hints: float = 1.0  # with teacher_in_loop: weight of the teacher's maps as targets
    mixup: float = 0.0  # with teacher_in_loop: fraction of mixed faces (no triplets)
    dropout: float = 0.0
    average: float = 0.0  # epochs: write the weights' moving average over about these (0: off)
    val_pairs: Path | None = None
    val_folds: tuple[int, ...] = (4, 5)
    val_fraction: float = 0.2
    max_people: int | None = None  # a subset (the --quick run)
    seed: int = 0
    threads: int = 0  # 0: TensorFlow's default (all cores)
    quick: bool = False
    command: list[str] = field(default_factory=list)

    def resolved_loss(self) -> str:
        if self.loss == "auto":
            return "both" if self.teacher is not None else "triplet"
        return self.loss


QUICK_PEOPLE = 600


def quick_options(opts: TrainOptions) -> TrainOptions:
    """A smoke test of the whole loop (a few minutes on 2 cores): 4 epochs on the 600
    training people with the most photos, validated on one fold of pairs."""
    people = min(opts.max_people or QUICK_PEOPLE, QUICK_PEOPLE)
    return replace(
        opts,
        epochs=min(opts.epochs, 4),
        val_folds=opts.val_folds[-1:],
        max_people=people,
        quick=True,
    )


def check_options(opts: TrainOptions) -> None:
    if opts.loss not in LOSSES:
        raise TrainError(f"--loss {opts.loss}: choose one of {', '.join(LOSSES)}")
    if opts.resolved_loss() in ("distill", "both") and opts.teacher is None:
        raise TrainError(f"--loss {opts.loss} needs --teacher BUNDLE (e.g. build/bundle)")
    if opts.teacher is not None and not (opts.teacher / "manifest.json").is_file():
        raise TrainError(f"--teacher {opts.teacher}: not a model bundle (no manifest.json)")
    if opts.mining not in MINING:
        raise TrainError(f"--mining {opts.mining}: choose one of {', '.join(MINING)}")
    if opts.distill not in DISTILL:
        raise TrainError(f"--distill {opts.distill}: choose one of {', '.join(DISTILL)}")
    if opts.people_per_batch < 2 or opts.images_per_person < 2:
        raise TrainError("a batch needs at least 2 people and 2 photos per person")
    if opts.init not in INITS:
        raise TrainError(f"--init {opts.init}: choose {' or '.join(INITS)}")
    if opts.init == "teacher" and opts.teacher is None:
        raise TrainError("--init teacher needs --teacher BUNDLE")
    if opts.epochs < 1:
        raise TrainError("--epochs must be at least 1")
    if opts.average < 0:
        raise TrainError("--average is a number of epochs, 0 (off) or more")
    if opts.teacher_in_loop and (opts.init != "teacher" or opts.resolved_loss() == "triplet"):
        raise TrainError(
            "--teacher-in-loop needs --init teacher and a distillation loss (distill or both)"
        )
    if opts.init != "teacher" and (opts.refit or opts.scale != 1 or opts.stem_stride != 1):
        raise TrainError(
            "--refit, --scale and --stem-stride need --init teacher (they shape a cut of it)"
        )
    if opts.distill == "centred" and not live(opts):
        raise TrainError(
            "--distill centred needs --teacher-in-loop (the teacher's raw embedding of "
            "every crop; add --init teacher --teacher-in-loop)"
        )
    if opts.mixup and not opts.teacher_in_loop:
        raise TrainError("--mixup needs --teacher-in-loop (the teacher labels the mixed faces)")


def live(opts: TrainOptions) -> bool:
    """Whether the teacher runs inside the training loop (a cut student that learns from
    it): targets for every augmented crop, and hints."""
    return opts.teacher_in_loop and opts.init == "teacher" and opts.resolved_loss() != "triplet"


def default(name: str) -> Any:
    """The default of one option (for the CLI's flag declarations)."""
    for f in fields(TrainOptions):
        if f.name == name:
            return f.default
    raise KeyError(name)
