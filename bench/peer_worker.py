"""The peers, each in its own venv (made by peer_venv.py), never in the project's: imports
numpy and the peer's package only (face_recognition and dlib, or OpenCV), not edge.

  peer_worker.py versions|embed|speed|clip --system '{"name": "dlib"}' ...
  peer_worker.py ... --system '{"name": "sface", "yunet": PATH, "sface": PATH}'

- **dlib** (face_recognition 1.3.0): ``face_locations(img, 1, "hog")``; 5-point landmarks
  (``pose_predictor_5_point``, what ``face_encodings(model="small")`` uses) and dlib's
  150x150 chip with padding 0.25 (``dlib.get_face_chip``); the ResNet on the chip
  (``face_encoder.compute_face_descriptor``). These are the steps of ``face_encodings``,
  timed one by one; ``face_encodings`` itself is timed too. Euclidean distance; the
  documented tolerance is 0.6.
- **sface** (OpenCV): ``cv2.FaceDetectorYN`` (score 0.9, NMS 0.3, top 5000: OpenCV's
  sample defaults) at the photo's own size; ``FaceRecognizerSF.alignCrop`` and
  ``feature``. Cosine similarity; the documented threshold is 0.363 (``FR_COSINE``), so a
  distance (1 - similarity) of 0.637. One OpenCV thread.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np
from numpy.typing import NDArray
from worker_common import Found, System, Vector, main_for


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class Dlib:
    name = "dlib"
    metric = "euclidean"

    def __init__(self) -> None:
        import dlib
        import face_recognition
        from face_recognition import api

        self.fr, self.api, self.dlib = face_recognition, api, dlib

    def load(self, path: str) -> Any:
        try:
            return self.fr.load_image_file(path)
        except OSError:
            return None

    def detect(self, image: Any) -> list[Found]:
        locations = self.fr.face_locations(image, number_of_times_to_upsample=1, model="hog")
        return [
            Found((float(lf), float(t), float(r), float(b)), (t, r, b, lf))
            for t, r, b, lf in locations
        ]

    def align(self, image: Any, face: Found) -> Any:
        shape = self.api.pose_predictor_5_point(image, self.api._css_to_rect(face.native))
        return self.dlib.get_face_chip(image, shape, size=150, padding=0.25)

    def embed(self, aligned: Any) -> Vector:
        return np.asarray(self.api.face_encoder.compute_face_descriptor(aligned), np.float64)

    def median(self, faces: list[Found]) -> Found:
        t, r, b, lf = (round(v) for v in np.median([f.native for f in faces], axis=0))
        return Found((float(lf), float(t), float(r), float(b)), (t, r, b, lf))

    def from_rgb(self, frame: NDArray[np.uint8]) -> Any:
        return frame

    def face_encodings(self, image: Any, face: Found) -> Callable[[], Any]:
        return lambda: self.fr.face_encodings(image, [face.native], 1, "small")


class SFace:
    name = "sface"
    metric = "cosine"

    def __init__(self, yunet: str, sface: str) -> None:
        import cv2

        cv2.setNumThreads(1)
        self.cv2 = cv2
        self.size = (320, 320)
        self.detector = cv2.FaceDetectorYN.create(yunet, "", self.size, 0.9, 0.3, 5000)
        self.recognizer = cv2.FaceRecognizerSF.create(sface, "")

    def load(self, path: str) -> Any:
        return self.cv2.imread(path)  # BGR, as OpenCV's samples read it; None if unreadable

    def detect(self, image: Any) -> list[Found]:
        size = (image.shape[1], image.shape[0])
        if size != self.size:
            self.detector.setInputSize(size)
            self.size = size
        _, faces = self.detector.detect(image)
        if faces is None:
            return []
        return [
            Found((float(f[0]), float(f[1]), float(f[0] + f[2]), float(f[1] + f[3])), f)
            for f in faces
        ]

    def align(self, image: Any, face: Found) -> Any:
        return self.recognizer.alignCrop(image, face.native)

    def embed(self, aligned: Any) -> Vector:
        return np.asarray(self.recognizer.feature(aligned)[0], np.float64)

    def median(self, faces: list[Found]) -> Found:
        row = np.median(np.stack([f.native for f in faces]), axis=0).astype(np.float32)
        x, y, w, h = (float(v) for v in row[:4])
        return Found((x, y, x + w, y + h), row)

    def from_rgb(self, frame: NDArray[np.uint8]) -> Any:
        return self.cv2.cvtColor(frame, self.cv2.COLOR_RGB2BGR)


def make(options: dict[str, Any]) -> System:
    if options.get("name") == "sface":
        return SFace(options["yunet"], options["sface"])
    return Dlib()


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version(), "numpy": np.__version__}
    for dist in (
        "face_recognition",
        "face_recognition_models",
        "dlib-bin",
        "opencv-python-headless",
    ):
        if (v := _version(dist)) is not None:
            out[dist] = v
    try:
        import dlib

        out["dlib"] = dlib.__version__
        out["DLIB_USE_BLAS"] = bool(getattr(dlib, "DLIB_USE_BLAS", False))
        out["USE_AVX_INSTRUCTIONS"] = bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False))
    except ImportError:
        import cv2

        out["opencv"] = cv2.__version__
    return out


def extra(system: System) -> Callable[[Any, Found], Callable[[], Any]] | None:
    return system.face_encodings if isinstance(system, Dlib) else None


if __name__ == "__main__":
    main_for(make, versions, extra)
