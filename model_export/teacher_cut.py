"""``model-export train --init teacher``: the student cut out of the teacher bundle's own
encoder (dlib's ResNet by ``model_export.resnet_cut``, a chain such as SFace by
``model_export.prune``), the options that shape the cut checked against the kind of
teacher before any work, and ``--refit``: the cut fitted back to the teacher layer by
layer before the first epoch."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np

from model_export.train_data import Prepared
from model_export.train_options import TrainError, TrainOptions, default

logger = logging.getLogger(__name__)


def teacher_source(opts: TrainOptions) -> Any:
    """The encoder the teacher bundle holds (its manifest names its source)."""
    from model_export.encoders import EncoderError, resolve_encoder

    assert opts.teacher is not None
    manifest = json.loads((opts.teacher / "manifest.json").read_text())
    source = manifest.get("provenance", {}).get("encoder_source")
    if not source:
        raise TrainError(
            f"--teacher {opts.teacher}: its manifest does not say which encoder it holds"
        )
    try:
        return resolve_encoder(source)
    except EncoderError as exc:
        raise TrainError(f"--init teacher: {exc}") from exc


CUT_PLAN_FACES = 128
CHAIN_DROP = ("conv_11", "conv_12")  # a chain's (SFace's) blocks left out by default


def check_cut(opts: TrainOptions, kind: str) -> None:
    """The options that shape the cut against the kind of encoder the teacher holds
    (``dlib``: ``model_export.resnet_cut``; else a chain: ``model_export.prune``), before
    any data is prepared."""
    if kind == "dlib":
        if opts.scale != 1 or opts.stem_stride != 1 or opts.drop_blocks is not None:
            raise TrainError(
                "--scale, --stem-stride and --drop-blocks cut SFace-style chains; a cut of "
                "dlib's ResNet takes --keep (its stream), --inner-keep and --stem-kernel"
            )
    elif opts.stem_kernel != 7:
        raise TrainError("--stem-kernel shapes a cut of dlib's ResNet (give a dlib --teacher)")
    elif opts.inner_keep != default("inner_keep"):
        raise TrainError("--inner-keep shapes a cut of dlib's ResNet (give a dlib --teacher)")


def student_from_teacher(
    opts: TrainOptions, source: Any, data: Prepared
) -> tuple[Any, dict[str, Any], Any, Any]:
    """The student cut out of the teacher bundle's own encoder (its float Keras model):
    dlib's ResNet by ``model_export.resnet_cut``, a chain (SFace) by
    ``model_export.prune``; what was kept; the teacher model; the cut's report."""
    from model_export.encoders import EncoderError
    from model_export.prune import PruneError, pruned_student

    try:
        teacher = source.keras_model()
    except EncoderError as exc:
        raise TrainError(f"--init teacher: {exc}") from exc
    if source.kind == "dlib":
        from model_export.resnet_cut import resnet_cut

        centre = data.centre
        pick = np.linspace(0, len(centre) - 1, min(CUT_PLAN_FACES, len(centre))).astype(int)
        try:
            model, cut = resnet_cut(
                teacher, opts.keep, opts.inner_keep, centre[pick], opts.stem_kernel
            )
        except ValueError as exc:
            raise TrainError(f"--init teacher: {exc}") from exc
        record = {
            "init": "teacher",
            "architecture": "dlib's ResNet, cut (model_export.resnet_cut)",
            "teacher_encoder": source.name,
            **cut.record(),
            "normalisation": "(pixel - mean) / 256, folded into the first convolution",
        }
        return model, record, teacher, cut
    try:
        model, report = pruned_student(
            teacher,
            opts.keep,
            CHAIN_DROP if opts.drop_blocks is None else opts.drop_blocks,
            stem_stride=opts.stem_stride,
            scale=opts.scale,
        )
    except PruneError as exc:
        raise TrainError(f"--init teacher: {exc}") from exc
    record = {
        "init": "teacher",
        "teacher_encoder": source.name,
        "keep": opts.keep,
        "stem_stride": opts.stem_stride,
        "scale": opts.scale,
        "dropped_blocks": report.dropped,
        "channels": report.kept,
        "prelu_replaced_by_relu": len(report.prelu_slopes),
    }
    return model, record, teacher, report


REFIT_FACES = 256
REFIT_FACES_RESNET = 1024  # its last maps are 3x3: 256 faces are learnt by heart


def refit_cut(model: Any, teacher: Any, cut: Any, data: Prepared) -> dict[str, Any]:
    """The cut refitted to the teacher layer by layer (``model_export.reconstruct``,
    ``model_export.resnet_cut.refit``): the convolutions on a few hundred training faces
    spread over the set, the last linear layer on every training face. Returns the
    per-layer errors (for train.json)."""
    from model_export.reconstruct import reconstruct
    from model_export.resnet_cut import ResnetCut
    from model_export.resnet_cut import refit as refit_resnet

    t0 = time.monotonic()
    centre = data.centre
    resnet = isinstance(cut, ResnetCut)
    n = REFIT_FACES_RESNET if resnet else REFIT_FACES
    pick = np.linspace(0, len(centre) - 1, min(n, len(centre))).astype(int)
    logger.info("refitting the cut to the teacher on %d faces (a few minutes)", len(pick))
    if resnet:
        result = refit_resnet(model, teacher, cut, centre[pick], dense_faces=centre)
    else:
        result = reconstruct(model, teacher, cut, centre[pick], dense_faces=centre)
    logger.info("refit done in %.0f s", time.monotonic() - t0)
    return {
        "faces": len(pick),
        "dense_faces": len(centre),
        "relative_error_before": {k: round(v, 4) for k, v in result.before.items()},
        "relative_error_after": {k: round(v, 4) for k, v in result.after.items()},
        "dense_ridge": result.dense_ridge,
        "seconds": round(time.monotonic() - t0, 1),
    }
