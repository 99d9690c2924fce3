"""Pure-numpy reader for dlib's serialized ``shape_predictor`` (.dat) files.

The .dat is parsed once at build time and stored as an ``.npz`` that
:class:`edge.landmarks.ShapePredictor` loads in milliseconds.

dlib serialization (dlib/serialize.h, shape_predictor.h):
  * integers: one control byte (low nibble = byte count, bit 0x80 = negative)
    followed by that many little-endian bytes of the magnitude;
  * float/double: two integers, mantissa (int64) and exponent (int16),
    value = mantissa * 2**exponent (exponent 32000 = +-inf, 32001 = nan);
  * std::vector: size (unsigned long) then the items;
  * matrix: rows, cols (stored negated, -nr -nc, in the current format) then
    the items in row-major order;
  * dlib::vector<float,2>: x then y;
  * shape_predictor: version(=1), initial_shape (matrix<float,0,1>),
    forests (vector<vector<regression_tree>>), anchor_idx
    (vector<vector<unsigned long>>), deltas (vector<vector<vector<float,2>>>);
  * regression_tree: splits (vector<{idx1, idx2, thresh}>), leaf_values
    (vector<matrix<float,0,1>>).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from model_export.dlib_serialize import DlibFormatError, Reader

logger = logging.getLogger(__name__)


def _col_vector(r: Reader) -> list[float]:
    nr, nc = abs(r.int()), abs(r.int())  # negative sizes mark the newer format
    return [r.float() for _ in range(nr * nc)]


def read_shape_predictor(path: str | Path) -> dict[str, NDArray[np.generic]]:
    """Parse a dlib shape_predictor .dat into dense numpy arrays."""
    r = Reader(Path(path).read_bytes())
    version = r.int()
    if version != 1:
        raise DlibFormatError(f"unexpected shape_predictor version {version}")
    initial_shape = np.array(_col_vector(r), dtype=np.float32)

    n_levels = r.int()
    idx1: list[list[list[int]]] = []
    idx2: list[list[list[int]]] = []
    thresh: list[list[list[float]]] = []
    leaves: list[list[list[list[float]]]] = []
    for _ in range(n_levels):
        lv_i1, lv_i2, lv_th, lv_leaf = [], [], [], []
        for _ in range(r.int()):
            splits = [(r.int(), r.int(), r.float()) for _ in range(r.int())]
            lv_i1.append([s[0] for s in splits])
            lv_i2.append([s[1] for s in splits])
            lv_th.append([s[2] for s in splits])
            lv_leaf.append([_col_vector(r) for _ in range(r.int())])
        idx1.append(lv_i1)
        idx2.append(lv_i2)
        thresh.append(lv_th)
        leaves.append(lv_leaf)

    anchor = [[r.int() for _ in range(r.int())] for _ in range(r.int())]
    deltas = [[(r.float(), r.float()) for _ in range(r.int())] for _ in range(r.int())]
    if r.remaining:
        raise DlibFormatError(f"{r.remaining} trailing bytes after shape_predictor")

    out: dict[str, NDArray[np.generic]] = {
        "initial_shape": initial_shape,
        "split_idx1": np.array(idx1, dtype=np.int32),
        "split_idx2": np.array(idx2, dtype=np.int32),
        "split_thresh": np.array(thresh, dtype=np.float32),
        "leaf_values": np.array(leaves, dtype=np.float32),
        "anchor_idx": np.array(anchor, dtype=np.int32),
        "deltas": np.array(deltas, dtype=np.float32),
    }
    n_splits = out["split_idx1"].shape[2]
    if out["leaf_values"].shape[2] != n_splits + 1:
        raise ValueError("trees must be complete: leaves == splits + 1")
    logger.info(
        "parsed %s: %d levels x %d trees, depth %d, %d features/level, %d parts",
        path,
        n_levels,
        out["split_idx1"].shape[1],
        int(np.log2(n_splits + 1)),
        out["deltas"].shape[1],
        initial_shape.size // 2,
    )
    return out


def save_npz(dat_path: str | Path, path_out: str | Path) -> Path:
    """Convert a dlib .dat shape predictor to an uncompressed .npz file."""
    arrays = read_shape_predictor(dat_path)
    path_out = Path(path_out)
    np.savez(path_out, **arrays)  # type: ignore[arg-type]
    return path_out
