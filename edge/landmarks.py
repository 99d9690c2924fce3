"""Numpy re-implementation of dlib's ``shape_predictor`` inference (ERT cascade).

Bit-faithful to dlib/image_processing/shape_predictor.h:
  * the box is a dlib ``rectangle`` (left, top, right, bottom), right/bottom
    *inclusive*; the unit square maps to it by x = l + (r - l) * u, i.e. the
    scale is width - 1, not width;
  * per cascade level the similarity transform initial_shape -> current_shape
    (Umeyama, double) is cast to float32, feature points are
    ``m @ delta + current_shape[anchor]`` in float32, mapped to the image in
    double and rounded with floor(x + 0.5);
  * pixels outside the image read as 0; RGB pixels read as (r + g + b) // 3;
  * a tree goes left iff f[idx1] - f[idx2] > thresh (strict, float32);
  * leaf vectors are added to the shape tree by tree, in float32;
  * output landmarks are rounded like dlib's ``point`` (floor(x + 0.5)).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

Box = Sequence[float]


def similarity_matrix(src: Sequence[float], dst: Sequence[float]) -> tuple[float, float]:
    """(a, b) of dlib's find_similarity_transform(src -> dst) 2x2 part [[a, -b], [b, a]].

    src/dst are flat (x0, y0, x1, y1, ...) shapes.  This is the closed form of
    Umeyama's method in 2-D (what dlib computes with an SVD), in double.
    """
    n = len(src) // 2
    sx, sy = sum(src[0::2]) / n, sum(src[1::2]) / n
    dx, dy = sum(dst[0::2]) / n, sum(dst[1::2]) / n
    sigma = dot = cross = 0.0
    for i in range(n):
        ux, uy = src[2 * i] - sx, src[2 * i + 1] - sy
        vx, vy = dst[2 * i] - dx, dst[2 * i + 1] - dy
        sigma += ux * ux + uy * uy
        dot += ux * vx + uy * vy
        cross += ux * vy - uy * vx
    if sigma == 0.0:
        return 1.0, 0.0
    return dot / sigma, cross / sigma


def _leaf_table(depth: int) -> NDArray[np.int16]:
    """Leaf index reached for every bit pattern of split outcomes (bit k = go left at node k)."""
    n_splits = (1 << depth) - 1
    patterns = np.arange(1 << n_splits)
    node = np.zeros_like(patterns)
    for _ in range(depth):
        left = (patterns >> node) & 1
        node = 2 * node + 2 - left
    return (node - n_splits).astype(np.int16)


class ShapePredictor:
    """dlib-compatible ERT landmark predictor backed by an .npz model."""

    def __init__(self, arrays: dict[str, NDArray[np.generic]]) -> None:
        self.initial_shape = np.asarray(arrays["initial_shape"], np.float32)
        idx1 = np.asarray(arrays["split_idx1"], np.intp)
        idx2 = np.asarray(arrays["split_idx2"], np.intp)
        thresh = np.asarray(arrays["split_thresh"], np.float32)
        leaves = np.asarray(arrays["leaf_values"], np.float32)
        anchor = np.asarray(arrays["anchor_idx"], np.intp)
        deltas = np.asarray(arrays["deltas"], np.float32)
        self.n_levels, self.n_trees, n_splits = idx1.shape
        if n_splits > 15:
            raise ValueError("trees deeper than 4 are not supported")
        self.depth = (n_splits + 1).bit_length() - 1
        self.num_parts = self.initial_shape.size // 2
        self._init_list = [float(v) for v in self.initial_shape]
        # Pixel values are integers, so d > thresh  <=>  d > floor(thresh).
        thr_int = np.clip(np.floor(thresh), -256, 256).astype(np.int16)
        self._levels = [
            (
                np.ascontiguousarray(deltas[lv].T),  # (2, F): dx row, dy row
                np.stack((2 * anchor[lv], 2 * anchor[lv] + 1)),  # (2, F)
                idx1[lv].ravel(),
                idx2[lv].ravel(),
                thr_int[lv].ravel(),
                leaves[lv].reshape(-1, leaves.shape[-1]),
            )
            for lv in range(self.n_levels)
        ]
        # Split outcomes of one tree -> bit pattern (exact in float32) -> leaf.
        self._bit_weights = (1 << np.arange(n_splits)).astype(np.float32)
        self._leaf_table = _leaf_table(self.depth)
        self._leaf_base = np.arange(self.n_trees) * (n_splits + 1)

    @classmethod
    def load(cls, npz_path: str | Path) -> ShapePredictor:
        with np.load(npz_path) as data:
            arrays = {k: data[k] for k in data.files}
        sp = cls(arrays)
        logger.debug("loaded %s: %d levels x %d trees", npz_path, sp.n_levels, sp.n_trees)
        return sp

    @staticmethod
    def to_gray(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """dlib's rgb -> grey pixel assignment: (r + g + b) / 3, integer division."""
        if image.ndim == 2:
            return image
        s = image[..., 0].astype(np.uint16) + image[..., 1] + image[..., 2]
        return (s // 3).astype(np.uint8)

    def predict(
        self, image: NDArray[np.uint8], box: Box, round_points: bool = True
    ) -> NDArray[np.float32]:
        """Landmarks (num_parts, 2) as (x, y) in image pixels.

        image: HxW grey or HxWx3 RGB uint8.  box: dlib rectangle
        (left, top, right, bottom) with right/bottom inclusive, e.g. from
        ``dlib.rectangle`` or a HOG detection.  Integer boxes reproduce dlib
        exactly; float boxes are accepted (cast to float32 like dlib's corner
        points).  With round_points (default) the result equals dlib's integer
        ``full_object_detection`` parts.
        """
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError("image must be an HxW or HxWx3 uint8 array")
        gray = self.to_gray(image)
        h, w = gray.shape
        # Flat grey pixels plus one trailing 0 used for every outside pixel.
        pixels = np.zeros(h * w + 1, np.int16)
        pixels[:-1] = gray.ravel()
        left, top, right, bottom = (float(v) for v in np.asarray(box, np.float32)[:4])
        scale = np.array([[right - left], [bottom - top]])
        offset = np.array([[left], [top]])
        limit = np.array([[w], [h]])
        steps = np.empty((self.n_trees + 1, self.initial_shape.size), np.float32)
        shape = self.initial_shape
        for d, anchor, i1, i2, thr, leaves in self._levels:
            a, c = self._similarity(shape)
            # float32, same rounding as dlib: (m00*dx + m01*dy) + anchor point
            v = (np.array([[a], [c]]) * d[0] + np.array([[-c], [a]]) * d[1]) + shape[anchor]
            # to image coordinates in double, then dlib's point rounding
            p = np.floor((scale * v + offset) + 0.5).astype(np.intp)
            inside = ((p >= 0) & (p < limit)).all(axis=0)
            feats = pixels[np.where(inside, p[1] * w + p[0], h * w)]
            go_left = ((feats[i1] - feats[i2]) > thr).reshape(self.n_trees, -1)
            pattern = (go_left.astype(np.float32) @ self._bit_weights).astype(np.intp)
            steps[0] = shape
            np.take(leaves, self._leaf_base + self._leaf_table[pattern], axis=0, out=steps[1:])
            # Sequential float32 accumulation tree by tree, like dlib's loop
            # (numpy reduces the outer axis row by row, not pairwise).
            shape = np.add.reduce(steps, axis=0)
        pts: NDArray[np.float64] = scale.T * shape.reshape(-1, 2).astype(np.float64) + offset.T
        if round_points:
            pts = np.floor(pts + 0.5)  # dlib's dpoint -> point conversion
        return pts.astype(np.float32)

    def _similarity(self, shape: NDArray[np.float32]) -> tuple[np.float32, np.float32]:
        a, b = similarity_matrix(self._init_list, shape.tolist())
        return np.float32(a), np.float32(b)  # dlib: matrix_cast<float>(tform.get_m())
