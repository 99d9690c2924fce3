"""Encoder sources the export stage can take, and what each one needs from a bundle.

``dlib`` (default): dlib's ResNet metric network from ``face_recognition_models`` (CC0):
150x150 RGB dlib chips, 128-d, Euclidean distance, dlib's own threshold 0.6.
A path to another dlib ``.dat`` of the same architecture is read the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.bundle import sha256_file
from edge.errors import EdgeError
from model_export.assets import face_recognition_models_file

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

    def keras_model(self) -> keras.Model:
        """The float Keras model (raw 0-255 RGB in, embedding out, no normalisation)."""
        from model_export.dlib_import import read_dlib_dat
        from model_export.keras_models import build_dlib_resnet

        return build_dlib_resnet(read_dlib_dat(self.path))


def resolve_encoder(arg: str) -> EncoderSource:
    """``dlib`` or a path to a dlib ``.dat`` metric network."""
    if arg == "dlib":
        path = face_recognition_models_file(DLIB_ENCODER)
        provenance = (
            "dlib_face_recognition_resnet_model_v1.dat (Davis King, dlib) from the PyPI "
            "package face_recognition_models 0.3.0; rebuilt in Keras from the .dat read in numpy"
        )
    else:
        path = Path(arg)
        if not path.is_file():
            raise EncoderError(f"--encoder {arg}: no such file (give 'dlib' or a dlib .dat file)")
        if path.suffix != ".dat":
            raise EncoderError(
                f"--encoder {arg}: unsupported encoder format {path.suffix or '(none)'}: "
                "this version takes 'dlib' or a dlib ResNet .dat file"
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
