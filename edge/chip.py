"""dlib face-chip geometry and sampling in numpy.

Mirrors dlib/image_transforms/interpolation.h:
  * ``get_face_chip_details`` for 5-point shapes: similarity transform
    (Umeyama) from the padded template points to the landmarks, turned into
    a ``chip_details`` (centre rect + angle);
  * ``extract_image_chip``: chip corners -> rotated rect corners, sampled
    with ``interpolate_bilinear`` from a sub-image clipped to the chip's
    bounding box grown by 2 px, result truncated to uint8, black outside;
    an RGB ``pyramid_down<2>`` is used when the chip shrinks the face > 2x.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

# dlib get_face_chip_details, 5-point branch (its own constants, close to but not
# equal to the 68-point means of points 45, 42, 36, 39, 33), in the part order of
# shape_predictor_5_face_landmarks.dat: 0/1 = outer/inner corner of the eye on the
# image's right (subject's left eye), 2/3 = outer/inner corner of the other eye,
# 4 = base of the nose.  Chip position = (padding + p) / (2 * padding + 1) * size.
TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)


@dataclass(frozen=True)
class ChipDetails:
    """dlib::chip_details: rect (left, top, right, bottom) in image pixels."""

    rect: tuple[float, float, float, float]
    angle: float
    rows: int
    cols: int


def template_points(size: int = 150, padding: float = 0.25) -> NDArray[np.float64]:
    """Chip-space positions of the 5 landmarks, as dlib computes them."""
    pad = float(np.float32(padding))  # dlib.get_face_chip takes padding as C float
    return ((pad + TEMPLATE_5) / (2 * pad + 1)) * float(size)


def face_chip_details(
    landmarks5: NDArray[np.floating], size: int = 150, padding: float = 0.25
) -> ChipDetails:
    """dlib.get_face_chip_details(shape, size, padding) for a 5-point shape."""
    src = template_points(size, padding)
    dst = np.asarray(landmarks5, np.float64).reshape(5, 2)
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - ms, dst - md
    sigma = float((s * s).sum())
    a = float((s * d).sum()) / sigma
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / sigma
    tx = md[0] - (a * ms[0] - b * ms[1])
    ty = md[1] - (b * ms[0] + a * ms[1])
    angle = math.atan2(b, a)
    scale = math.sqrt(a * a + b * b)
    cx = (a * (size / 2.0) - b * (size / 2.0)) + tx
    cy = (b * (size / 2.0) + a * (size / 2.0)) + ty
    hw = (size * scale - 1) / 2  # centered_drect: width-1, height-1
    return ChipDetails((cx - hw, cy - hw, cx + hw, cy + hw), angle, size, size)


def details_transform(details: ChipDetails) -> NDArray[np.float64]:
    """2x3 affine mapping chip (x=col, y=row) to image coordinates."""
    left, top, right, bottom = details.rect
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    cos_a, sin_a = math.cos(details.angle), math.sin(details.angle)

    def rot(x: float, y: float) -> tuple[float, float]:
        x, y = x - cx, y - cy
        return cos_a * x - sin_a * y + cx, sin_a * x + cos_a * y + cy

    tl, tr, bl = rot(left, top), rot(right, top), rot(left, bottom)
    return np.array(
        [
            [(tr[0] - tl[0]) / (details.cols - 1), (bl[0] - tl[0]) / (details.rows - 1), tl[0]],
            [(tr[1] - tl[1]) / (details.cols - 1), (bl[1] - tl[1]) / (details.rows - 1), tl[1]],
        ]
    )


def chip_transform(
    landmarks5: NDArray[np.floating], size: int = 150, padding: float = 0.25
) -> NDArray[np.float64]:
    """2x3 affine (chip coords -> image coords) of dlib.get_face_chip."""
    return details_transform(face_chip_details(landmarks5, size, padding))


def pyramid_down2(img: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """dlib pyramid_down<2> for RGB: [1 4 6 4 1]^2 / 256, integer, drop borders."""
    h, w = img.shape[:2]
    if h <= 8 or w <= 8:
        return np.zeros((0, 0, *img.shape[2:]), np.uint8)
    o = img.astype(np.uint32)
    nc, nr = (w - 3) // 2, (h - 3) // 2
    tmp = np.zeros((h, nc, *img.shape[2:]), np.uint32)
    down = np.zeros((nr, nc, *img.shape[2:]), np.uint32)
    for i, k in enumerate((1, 4, 6, 4, 1)):  # rows, then columns, as dlib does
        tmp += k * o[:, i : i + 2 * nc : 2]
    for i, k in enumerate((1, 4, 6, 4, 1)):
        down += k * tmp[i : i + 2 * nr : 2]
    return np.asarray(down // 256, np.uint8)


def _pyramid_level(width: float, height: float, n_pixels: int) -> int:
    """Pyramid level dlib samples from (-1 = the image itself)."""
    level = -1
    # pyramid_down<2>::rect_down: corners p -> p/2 - (1.25, 0.75); size -> (s-1)/2 + 1
    while ((width - 1) / 2 + 1) * ((height - 1) / 2 + 1) > n_pixels:
        level += 1
        width, height = (width - 1) / 2 + 1, (height - 1) / 2 + 1
    return level


def extract_chip(
    rgb_image: NDArray[np.uint8], transform: NDArray[np.float64], size: int | tuple[int, int] = 150
) -> NDArray[np.uint8]:
    """dlib.extract_image_chip / get_face_chip with bilinear sampling.

    transform: 2x3 chip -> image affine from :func:`chip_transform`; size: chip
    side or (rows, cols).  Works for HxWx3 (RGB or BGR, channels independent)
    and HxW uint8 images.  dlib's no-rotation/no-scaling copy shortcut
    (angle exactly 0 and rect exactly size x size) is not special-cased.
    """
    rows, cols = (size, size) if isinstance(size, int) else size
    m = np.asarray(transform, np.float64)
    h, w = rgb_image.shape[:2]
    corners = m[:, :2] @ np.array([[0, cols - 1, 0, cols - 1], [0, 0, rows - 1, rows - 1]])
    corners += m[:, 2:]
    rect_w = math.hypot(m[0, 0], m[1, 0]) * (cols - 1) + 1
    rect_h = math.hypot(m[0, 1], m[1, 1]) * (rows - 1) + 1
    level = _pyramid_level(rect_w, rect_h, rows * cols)
    grow = 2.0
    for _ in range(level + 1):
        grow = grow * 2 + 2
    lo = np.maximum(corners.min(axis=1) - grow, 0)
    hi = np.minimum(corners.max(axis=1) + grow, [w - 1, h - 1])
    bl, bt = np.floor(lo + 0.5).astype(int)
    br, bb = np.floor(hi + 0.5).astype(int)
    src = rgb_image[bt : bb + 1, bl : br + 1]
    mat, off = m[:, :2].copy(), m[:, 2] - (bl, bt)
    for _ in range(level + 1):
        src = pyramid_down2(src)
        mat, off = mat / 2, off / 2 - (1.25, 0.75)
    if level >= 0:
        logger.debug("chip sampled from pyramid level %d", level)
    return _bilinear(src, mat, off, rows, cols)


def _bilinear(
    src: NDArray[np.uint8], mat: NDArray[np.float64], off: NDArray[np.float64], rows: int, cols: int
) -> NDArray[np.uint8]:
    """dlib interpolate_bilinear + transform_image (black background, truncation)."""
    cc, rr = np.meshgrid(np.arange(cols, dtype=np.float64), np.arange(rows, dtype=np.float64))
    x = (mat[0, 0] * cc + mat[0, 1] * rr) + off[0]
    y = (mat[1, 0] * cc + mat[1, 1] * rr) + off[1]
    left, top = np.floor(x), np.floor(y)
    ok = (left >= 0) & (top >= 0) & (left + 1 < src.shape[1]) & (top + 1 < src.shape[0])
    li = np.where(ok, left, 0).astype(np.intp)
    ti = np.where(ok, top, 0).astype(np.intp)
    lr, tb = x - left, y - top
    if src.ndim == 3:  # same weights for every channel
        lr, tb = lr[..., None], tb[..., None]
    if src.size == 0:
        return np.zeros((rows, cols, *src.shape[2:]), np.uint8)
    li1 = np.minimum(li + 1, src.shape[1] - 1)  # only read where ok
    ti1 = np.minimum(ti + 1, src.shape[0] - 1)
    img = src.astype(np.float64)
    tl, tr, bl_, br = img[ti, li], img[ti, li1], img[ti1, li], img[ti1, li1]
    val = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl_ + lr * br)
    out: NDArray[np.uint8] = np.clip(val, 0, 255).astype(np.uint8)  # static_cast truncates
    out[~ok] = 0
    return out
