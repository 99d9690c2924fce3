"""A small student cut out of dlib's face ResNet and refitted to it on real faces.

dlib's encoder (``model_export.keras_models.build_dlib_resnet``) is a ResNet of plain 3x3
convolutions with ReLU: a 7x7 stem at stride 2, a 3x3 max pool, 14 residual blocks (two
3x3 convolutions each; a stride-2 block averages its shortcut 2x2 and zero-pads it to the
wider stream), a global average and one 128x256 linear layer: 271 M multiply-adds at
150x150. Its activations are ReLU already, so a cut of it keeps the teacher's own
nonlinearity (a cut of SFace swaps its PReLU for ReLU and starts far lower).

``resnet_cut`` keeps a fraction of the channels of the **residual stream** (``stream``:
the same channels through a stage; a wider stage keeps the narrower one's channels as its
first ones, which is what dlib's zero-padded shortcut needs) and of each block's
**inner** channels (``inner``: between its two convolutions). Multiply-adds fall with
the product of the two fractions (a block costs H*W*9*2*stream*inner). Either may be
one fraction for the whole cut or one per stage, by the height of the stage's maps
(35, 17, 8, 4 and 1 rows: ``stage_heights``), so a cut can spend its multiply-adds
where the teacher is hardest to follow. Channels are
chosen by the **energy** each carries on real faces: its mean square activation times
the squared norm of the weights that read it (the share of the next layers' input it
makes). Counts are multiples of 8 (XNNPACK's int8 kernels work in blocks of 8 or 16
channels: an int8 cut with 20 and 12 channels ran 40 % slower than one with 16 and 16
here). A batch norm follows every convolution, so the cut can be trained; ``refit`` sets
each one to pass its input through.

``refit`` then refits every convolution in order by least squares (as
``model_export.reconstruct`` does for a chain), from the student's own input to the
teacher's pre-activation on the kept channels. The second convolution of a block is
fitted to what the teacher's block adds to the stream **minus the student's own
shortcut** (the residual target), so each block makes up for the stream's earlier
errors. The linear layer is refitted to the teacher's embedding on every training face.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import layers

from model_export.dlib_arch import RESNET_BLOCKS
from model_export.keras_models import ZeroPadTo
from model_export.prune import keep_for
from model_export.reconstruct import (
    ReconstructReport,
    fit_conv,
    fit_dense,
    pass_through,
    relative_error,
)

__all__ = ["ResnetCut", "is_dlib_resnet", "refit", "resnet_cut"]

logger = logging.getLogger(__name__)


def _round8(n: float) -> int:
    return max(8, round(n / 8) * 8)


def _blocks() -> list[tuple[str, int, bool]]:
    return [
        (f"res{i:02d}_{n}{'d' if down else ''}", n, down)
        for i, (n, down) in enumerate(RESNET_BLOCKS)
    ]


def is_dlib_resnet(model: keras.Model) -> bool:
    names = {ly.name for ly in model.layers}
    return {"stem_conv", "fc"} <= names and all(f"{b}_conv2" in names for b, _, _ in _blocks())


Fraction = float | dict[int, float]  # one for the whole cut, or one per stage height


@dataclass
class ResnetCut:
    stream: Fraction
    inner: Fraction
    stem_kernel: int = 7  # the teacher's 7x7 stem, or a smaller one centred on it
    stream_channels: list[np.ndarray] = field(default_factory=list)  # per stage
    stage_of: list[int] = field(default_factory=list)  # block -> stage of its output
    inner_channels: list[np.ndarray] = field(default_factory=list)  # per block

    @property
    def channels(self) -> dict[str, np.ndarray]:
        """The convolutions whose output is a subset of a teacher map's channels, on the
        teacher's grid (the teacher in the loop hints them): the stem and each block's
        first convolution (the second one's target is the residual, not a map)."""
        out = {"stem_conv": self.stream_channels[0]}
        for (b, _, _), kept in zip(_blocks(), self.inner_channels, strict=True):
            out[f"{b}_conv1"] = kept
        return out

    def record(self) -> dict[str, Any]:
        return {
            "stream_keep": _fraction_record(self.stream),
            "inner_keep": _fraction_record(self.inner),
            "stem_kernel": self.stem_kernel,
            "stream_channels": [len(c) for c in self.stream_channels],
            "inner_channels": [len(c) for c in self.inner_channels],
        }


def _fraction_record(f: Fraction) -> float | dict[str, float]:
    return {str(h): v for h, v in sorted(f.items(), reverse=True)} if isinstance(f, dict) else f


def stage_heights(teacher: keras.Model) -> list[int]:
    """The height of each stage's maps (its last block's output): 35, 17, 8, 4 and 1 rows
    for dlib's 150x150 chip. A per-stage fraction (``{height: fraction}``) gives a stage
    the entry of the smallest height at or above its own, as ``prune.keep_for`` does."""
    heights: list[int] = []
    for i, (b, _, down) in enumerate(_blocks()):
        h = int(teacher.get_layer(f"{b}_conv2").output.shape[1])
        if i == 0 or down:
            heights.append(h)
        else:
            heights[-1] = h
    return heights


def _energies(teacher: keras.Model, names: list[str], faces: np.ndarray) -> dict[str, np.ndarray]:
    sub = keras.Model(teacher.input, [teacher.get_layer(n).output for n in names])
    outs = sub.predict(faces.astype(np.float32), batch_size=32, verbose=0)
    return {
        n: np.mean(o.reshape(-1, o.shape[-1]) ** 2, axis=0)
        for n, o in zip(names, outs, strict=True)
    }


def plan(teacher: keras.Model, stream: Fraction, inner: Fraction, faces: np.ndarray) -> ResnetCut:
    """Which channels the cut keeps (see the module doc), from the teacher's activations
    on ``faces`` (a hundred or so aligned chips). ``stream`` and ``inner`` are one
    fraction, or one per stage by the height of its maps (``stage_heights``)."""
    blocks = _blocks()
    heights = stage_heights(teacher)
    stream_in = ["stem_pool"] + [f"{b}_relu2" for b, _, _ in blocks]  # block i reads [i]
    e = _energies(teacher, stream_in + [f"{b}_relu1" for b, _, _ in blocks], faces)
    cut = ResnetCut(stream, inner)
    widths: list[int] = []
    for i, (_, n, down) in enumerate(blocks):
        if i == 0 or down:
            widths.append(n)
        cut.stage_of.append(len(widths) - 1)
    importance = [np.zeros(w) for w in widths]
    for i, (b, _, _) in enumerate(blocks):
        w = teacher.get_layer(f"{b}_conv1").get_weights()[0]
        stage = cut.stage_of[i - 1] if i else 0
        importance[stage] += e[stream_in[i]] * (w**2).sum(axis=(0, 1, 3))
    fc = teacher.get_layer("fc").get_weights()[0]
    importance[-1] += e[stream_in[-1]] * (fc**2).sum(axis=1)
    kept = np.array([], int)
    for k, w in enumerate(widths):
        # the stage before's channels come first (the shortcut carries them; a stage keeps
        # at least those); a wider stage adds its new channels, a same-width one (dlib's
        # last) may add channels the stage before left out, their shortcut zero
        if k and w == widths[k - 1]:
            candidates = np.setdiff1d(np.arange(w), kept)
        else:
            candidates = np.arange(widths[k - 1] if k else 0, w)
        order = candidates[np.argsort(-importance[k][candidates], kind="stable")]
        n_new = max(_round8(w * keep_for(stream, heights[k])) - len(kept), 0)
        kept = np.concatenate([kept, np.sort(order[:n_new])]).astype(int)
        cut.stream_channels.append(kept)
    for i, (b, n, _) in enumerate(blocks):
        w2 = teacher.get_layer(f"{b}_conv2").get_weights()[0]
        score = e[f"{b}_relu1"] * (w2**2).sum(axis=(0, 1, 3))
        count = _round8(n * keep_for(inner, heights[cut.stage_of[i]]))
        cut.inner_channels.append(np.sort(np.argsort(-score, kind="stable")[:count]))
    return cut


def build(teacher: keras.Model, cut: ResnetCut, name: str = "student") -> keras.Model:
    """The cut network with the teacher's weights on the kept channels and a batch norm
    after every convolution (float32 RGB 0-255 in, raw 128-d out)."""
    t = teacher

    def conv(x: Any, lname: str, cin: np.ndarray, cout: np.ndarray, crop: int = 0) -> Any:
        tl = t.get_layer(lname)
        kernel, bias = tl.get_weights()
        size = tl.kernel_size
        if crop:  # a smaller kernel, centred where the teacher's was: its middle taps
            kernel = kernel[crop:-crop, crop:-crop]
            size = kernel.shape[:2]
            x = layers.Cropping2D(crop, name=f"{lname}_crop")(x)
        new = layers.Conv2D(len(cout), size, tl.strides, tl.padding, name=lname)
        y = new(x)
        new.set_weights([kernel[:, :, cin][..., cout], bias[cout]])
        return layers.BatchNormalization(name=f"{lname}_bn")(y)

    inp = keras.Input(t.input_shape[1:], name="face")  # dlib's 150x150 chip
    teacher_stem = t.get_layer("stem_conv").kernel_size[0]
    if cut.stem_kernel > teacher_stem or (teacher_stem - cut.stem_kernel) % 2:
        raise ValueError(f"stem kernel {cut.stem_kernel}: 3, 5 or 7 (the teacher's is 7)")
    crop = (teacher_stem - cut.stem_kernel) // 2
    stem = conv(inp, "stem_conv", np.arange(3), cut.stream_channels[0], crop)
    x = layers.ReLU(name="stem_relu")(stem)
    x = layers.MaxPooling2D(3, 2, padding="valid", name="stem_pool")(x)
    current = cut.stream_channels[0]
    for i, (b, _, down) in enumerate(_blocks()):
        out = cut.stream_channels[cut.stage_of[i]]
        y = layers.ReLU(name=f"{b}_relu1")(conv(x, f"{b}_conv1", current, cut.inner_channels[i]))
        y = conv(y, f"{b}_conv2", cut.inner_channels[i], out)
        skip = layers.AveragePooling2D(2, 2, padding="valid", name=f"{b}_pool")(x) if down else x
        shape = tuple(max(p, q) for p, q in zip(y.shape[1:], skip.shape[1:], strict=True))
        if tuple(y.shape[1:]) != shape:
            y = ZeroPadTo(*shape, name=f"{b}_pad_main")(y)
        if tuple(skip.shape[1:]) != shape:
            skip = ZeroPadTo(*shape, name=f"{b}_pad_skip")(skip)
        x = layers.ReLU(name=f"{b}_relu2")(layers.Add(name=f"{b}_add")([y, skip]))
        current = out
    x = layers.GlobalAveragePooling2D(name="avg_pool_everything")(x)
    fc = layers.Dense(t.get_layer("fc").units, name="fc")
    y = fc(x)
    fc.set_weights([t.get_layer("fc").get_weights()[0][current], np.zeros(fc.units, np.float32)])
    return keras.Model(inp, y, name=name)


def resnet_cut(
    teacher: keras.Model,
    stream: Fraction,
    inner: Fraction,
    faces: np.ndarray,
    stem_kernel: int = 7,
    name: str = "student",
) -> tuple[keras.Model, ResnetCut]:
    """The cut (see the module doc) and which channels it kept. ``stem_kernel`` 5 or 3
    replaces the 7x7 stem by its middle taps (refitted by ``refit``): int8 LiteRT spends
    40 % of a cut's time in the 7x7 stem over three colour channels here; a 5x5 one
    costs two thirds of it, a 3x3 one half."""
    if not is_dlib_resnet(teacher):
        raise ValueError(f"{teacher.name}: not dlib's face ResNet (its layer names differ)")
    values = [v for f in (stream, inner) for v in (f.values() if isinstance(f, dict) else [f])]
    if not values or not all(0 < v <= 1 for v in values):
        raise ValueError(f"keep fractions must be in (0, 1]: stream {stream}, inner {inner}")
    cut = plan(teacher, stream, inner, faces)
    cut.stem_kernel = stem_kernel
    return build(teacher, cut, name), cut


def _outputs(
    model: keras.Model, tensors: list[Any], faces: np.ndarray, keep: list[Any] | None = None
) -> list[np.ndarray]:
    """Several of ``model``'s tensors on ``faces`` in one pass, in chunks; each sliced to
    its ``keep`` channels (None: all) as it comes, so only the kept part is held."""
    sub = keras.Model(model.input, tensors)
    keep = keep or [None] * len(tensors)
    parts: list[list[np.ndarray]] = [[] for _ in tensors]
    for i in range(0, len(faces), 64):
        outs = sub(faces[i : i + 64].astype(np.float32), training=False)
        outs = outs if isinstance(outs, list | tuple) else [outs]
        for part, o, k in zip(parts, outs, keep, strict=True):
            o = np.asarray(o)
            part.append(o if k is None else o[..., k])
    return [np.concatenate(p) for p in parts]


def refit(
    student: keras.Model,
    teacher: keras.Model,
    cut: ResnetCut,
    faces: np.ndarray,
    dense_faces: np.ndarray | None = None,
    ridge: float = 1e-3,
    dense_ridges: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0),
) -> ReconstructReport:
    """Refit ``student`` (from ``resnet_cut``) in place: every convolution on ``faces``
    (a thousand aligned chips: the last blocks' maps are 3x3, so fewer faces let a fit
    learn them by heart), the linear layer on ``dense_faces``. One pass of the teacher
    gives every target; the student runs up to each layer as it is refitted."""
    out = ReconstructReport()
    blocks = _blocks()
    t_names = ["stem_conv"] + [f"{b}_{part}" for b, _, _ in blocks for part in ("conv1", "add")]
    keeps = [cut.stream_channels[0]]
    for i in range(len(blocks)):
        keeps += [cut.inner_channels[i], cut.stream_channels[cut.stage_of[i]]]
    targets = dict(
        zip(
            t_names,
            _outputs(teacher, [teacher.get_layer(n).output for n in t_names], faces, keeps),
            strict=True,
        )
    )

    def fit(conv_name: str, x: np.ndarray, before: np.ndarray, target: np.ndarray) -> None:
        layer = student.get_layer(conv_name)
        fit_conv(layer, x, target, ridge, 32)
        (y,) = _outputs(student, [layer.output], faces)
        out.before[conv_name] = relative_error(before, target)
        out.after[conv_name] = relative_error(y, target)
        pass_through(student.get_layer(f"{conv_name}_bn"), y)
        logger.info(
            "refit %-18s relative error %.3f -> %.3f",
            conv_name,
            out.before[conv_name],
            out.after[conv_name],
        )

    stem = student.get_layer("stem_conv")
    x, y = _outputs(student, [stem.input, stem.output], faces)
    if cut.stem_kernel == teacher.get_layer("stem_conv").kernel_size[0]:
        pass_through(student.get_layer("stem_conv_bn"), y)  # whole input: exact already
    else:
        fit("stem_conv", x, y, targets["stem_conv"])
    for b, _, _ in blocks:
        conv1 = student.get_layer(f"{b}_conv1")
        x, y = _outputs(student, [conv1.input, conv1.output], faces)
        fit(conv1.name, x, y, targets[conv1.name])
        conv2 = student.get_layer(f"{b}_conv2")
        tensors = [conv2.input, conv2.output, student.get_layer(f"{b}_conv2_bn").output]
        x, main, normed, total = _outputs(
            student, [*tensors, student.get_layer(f"{b}_add").output], faces
        )
        teacher_sum = targets[f"{b}_add"]
        shortcut = total - _pad_to(normed, teacher_sum.shape)  # the student's own shortcut
        h, w = main.shape[1:3]
        fit(conv2.name, x, main, (teacher_sum - shortcut)[:, :h, :w])
    fit_dense(
        student, teacher, faces if dense_faces is None else dense_faces, dense_ridges, 32, out
    )
    return out


def _pad_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.pad(x, [(0, 0), (0, shape[1] - x.shape[1]), (0, shape[2] - x.shape[2]), (0, 0)])
