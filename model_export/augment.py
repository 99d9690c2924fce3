"""Training augmentation of aligned faces: what a camera and the aligner vary.

From a wide crop (the 112x112 ArcFace crop plus a border), each sample gets: a mirror
image (half of them), a small similarity jitter (scale, rotation, shift: the aligner's
landmark noise), colour (brightness, contrast, saturation, a grey image now and then) and
blur (out of focus, motion), then the 112x112 crop. Plain numpy and OpenCV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Augment:
    size: int = 112
    pad: int = 16
    flip: float = 0.5
    scale: float = 0.08  # +-8 %
    rotate: float = 8.0  # degrees
    shift: float = 4.0  # pixels
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.3
    grey: float = 0.1
    blur: float = 0.3  # probability of a Gaussian blur, sigma 0.5-1.5

    def centre(self, wide: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The plain 112x112 crop (no augmentation)."""
        p = self.pad
        return wide[p : p + self.size, p : p + self.size]

    def __call__(
        self, wide: NDArray[np.uint8], rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], bool]:
        """(augmented crop, whether it was mirrored)."""
        flipped = bool(rng.random() < self.flip)
        if flipped:
            wide = wide[:, ::-1]
        s = 1 + rng.uniform(-self.scale, self.scale)
        a = math.radians(rng.uniform(-self.rotate, self.rotate))
        c = (self.pad + self.size / 2, self.pad + self.size / 2)
        # output pixel (x, y) samples the wide crop at centre + R*s*(x - size/2) + shift
        m = np.array(
            [
                [s * math.cos(a), -s * math.sin(a), 0.0],
                [s * math.sin(a), s * math.cos(a), 0.0],
            ]
        )
        m[:, 2] = np.array(c) - m[:, :2] @ np.array([self.size / 2, self.size / 2])
        m[:, 2] += rng.uniform(-self.shift, self.shift, 2)
        out = cv2.warpAffine(
            np.ascontiguousarray(wide),
            m,
            (self.size, self.size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT101,
        )
        img = out.astype(np.float32)
        img *= 1 + rng.uniform(-self.brightness, self.brightness)
        mean = img.mean()
        img = (img - mean) * (1 + rng.uniform(-self.contrast, self.contrast)) + mean
        grey = img.mean(axis=2, keepdims=True)
        if rng.random() < self.grey:
            img = np.repeat(grey, 3, axis=2)
        else:
            img = grey + (img - grey) * (1 + rng.uniform(-self.saturation, self.saturation))
        if rng.random() < self.blur:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
        return np.rint(np.clip(img, 0, 255)).astype(np.uint8), flipped
