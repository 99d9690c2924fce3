"""The bundle's int8 encoder runs in the older runtime too: tflite-runtime 2.14 (numpy<2),
through edge's own loader and embedder, and agrees with ai-edge-litert."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.embedder import TFLiteEmbedder
from edge.images import read_image
from model_export.calibration import select

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPT = """
import sys, numpy as np
from pathlib import Path
from edge.bundle import load_bundle
from edge.embedder import TFLiteEmbedder
bundle = load_bundle(Path(sys.argv[1]))
m = bundle.manifest
emb = TFLiteEmbedder(bundle.path(m.encoder.file), m.encoder, m.encoder_id, runtime="tflite-runtime")
chips = np.load(sys.argv[2])["chips"]
np.save(sys.argv[3], np.stack([emb.vector(c) for c in chips]))
import tflite_runtime; print("tflite-runtime", tflite_runtime.__version__, "numpy", np.__version__)
"""


def test_int8_encoder_agrees_across_runtimes(
    both_runtimes_bundle_dir: Path, face_data: Path, repo_root: Path, tmp_path: Path
) -> None:
    from edge.engine import load_engine

    bundle = load_bundle(both_runtimes_bundle_dir)
    engine = load_engine(bundle)
    chips = []
    for path in select(face_data / "lfw", set(), 12):
        image = read_image(path)
        dets = engine.detect(image)
        if dets:
            chips.append(engine.align(image, dets[0]).image)
    np.savez(tmp_path / "chips.npz", chips=np.stack(chips))
    m = bundle.manifest
    litert = np.stack(
        [
            TFLiteEmbedder(bundle.path(m.encoder.file), m.encoder, m.encoder_id).vector(c)
            for c in chips
        ]
    )

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "tflite-runtime==2.14.*", "numpy<2", "pydantic>=2.6"], check=True)
    subprocess.run([*pip, "--no-deps", str(repo_root)], check=True)
    out = subprocess.run([py, "-c", SCRIPT, str(both_runtimes_bundle_dir), str(tmp_path / "chips.npz"), str(tmp_path / "v.npy")],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "tflite-runtime 2.14" in out.stdout
    other = np.load(tmp_path / "v.npy")
    cos = (litert * other).sum(1) / (np.linalg.norm(litert, axis=1) * np.linalg.norm(other, axis=1))
    # Both run the same int8 graph; their kernels may round differently by a quantum.
    assert cos.min() > 0.999
    assert np.abs(litert - other).max() < 0.05
