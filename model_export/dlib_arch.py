"""The hard-coded topology of dlib's face-recognition ResNet (dnn_face_recognition_ex.cpp)
and a check that a parsed ``.dat`` file lists exactly that layer sequence.

Forward order: con<32,7,7,2,2> affine relu max_pool<3,3,2,2>, then 14 residual
blocks (level4 .. level0 below), avg_pool_everything, fc_no_bias<128>.
dlib padding rule for con/pool: stride != 1 -> 0, else window/2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlib_import import DlibNet

# (num_filters, downsampling) per residual block, forward order.
RESNET_BLOCKS: tuple[tuple[int, bool], ...] = (
    *[(32, False)] * 3,  # level4: 3x ares<32>
    (64, True),
    *[(64, False)] * 3,  # level3: ares_down<64>, 3x ares<64>
    (128, True),
    *[(128, False)] * 2,  # level2
    (256, True),
    *[(256, False)] * 2,  # level1
    (256, True),  # level0: ares_down<256>
)
EMBEDDING_DIM = 128


class ArchitectureMismatchError(ValueError):
    """The .dat file does not hold dlib's face-recognition ResNet topology."""


@dataclass(frozen=True)
class LayerSpec:
    kind: str
    attrs: Mapping[str, int] = field(default_factory=dict)
    in_channels: int = 0  # for con: expected filter depth


def _window(k: int, stride: int) -> dict[str, int]:
    """Size, stride and padding of a square window (dlib pads only stride-1 windows)."""
    pad = 0 if stride != 1 else k // 2
    return {
        "nr": k,
        "nc": k,
        "stride_y": stride,
        "stride_x": stride,
        "padding_y": pad,
        "padding_x": pad,
    }


def _con(n: int, k: int, stride: int, cin: int) -> LayerSpec:
    return LayerSpec("con", {"num_filters": n, **_window(k, stride)}, cin)


def _pool(kind: str, k: int, stride: int) -> LayerSpec:
    return LayerSpec(kind, _window(k, stride))


def expected_layers() -> list[LayerSpec]:
    """Forward-order layer list including tag/skip markers, as serialized by dlib."""
    tag = LayerSpec("tag_or_skip")
    affine, relu, add = LayerSpec("affine"), LayerSpec("relu"), LayerSpec("add_prev")
    specs = [_con(32, 7, 2, 3), affine, relu, _pool("max_pool", 3, 2)]
    cin = 32
    for n, down in RESNET_BLOCKS:
        specs += [tag, _con(n, 3, 2 if down else 1, cin), affine, relu, _con(n, 3, 1, n), affine]
        if down:  # tag2, skip1, avg_pool<2,2,2,2>
            specs += [tag, tag, _pool("avg_pool", 2, 2)]
        specs += [add, relu]
        cin = n
    everything = {"nr": 0, "nc": 0, "stride_y": 1, "stride_x": 1, "padding_y": 0, "padding_x": 0}
    specs += [LayerSpec("avg_pool", everything), LayerSpec("fc", {"num_outputs": EMBEDDING_DIM})]
    return specs


def check_architecture(net: DlibNet) -> None:
    """Raise ArchitectureMismatchError unless ``net`` is exactly dlib's face ResNet."""
    specs = expected_layers()
    if net.loss != "loss_metric_2" or net.input.kind != "input_rgb_image_sized":
        raise ArchitectureMismatchError(f"unexpected loss/input: {net.loss}, {net.input.kind}")
    if (net.input.rows, net.input.cols) != (150, 150):
        raise ArchitectureMismatchError(f"input must be 150x150, got {net.input}")
    if len(net.layers) != len(specs):
        raise ArchitectureMismatchError(
            f"file lists {len(net.layers)} layers, dlib face ResNet has {len(specs)}"
        )
    for i, (layer, spec) in enumerate(zip(net.layers, specs, strict=True)):
        where = f"layer {i} ({layer.serial_name or layer.kind})"
        if layer.kind != spec.kind:
            raise ArchitectureMismatchError(f"{where}: expected {spec.kind}, got {layer.kind}")
        wrong = {
            k: (v, layer.attrs.get(k)) for k, v in spec.attrs.items() if layer.attrs.get(k) != v
        }
        if wrong:
            raise ArchitectureMismatchError(f"{where}: (expected, found) {wrong}")
        if spec.kind == "con":
            n, k = spec.attrs["num_filters"], spec.attrs["nr"]
            if layer.arrays["filters"].shape != (n, spec.in_channels, k, k):
                raise ArchitectureMismatchError(
                    f"{where}: filters {layer.arrays['filters'].shape}, "
                    f"expected {(n, spec.in_channels, k, k)}"
                )
        if spec.kind == "affine" and layer.attrs.get("mode") != 0:
            raise ArchitectureMismatchError(f"{where}: affine must be CONV_MODE (0)")
        if spec.kind == "fc":
            if layer.attrs.get("bias_mode") != 1 or "biases" in layer.arrays:
                raise ArchitectureMismatchError(f"{where}: expected fc_no_bias")
            if layer.arrays["weights"].shape != (256, EMBEDDING_DIM):
                shape = layer.arrays["weights"].shape
                raise ArchitectureMismatchError(f"{where}: fc weights {shape}")
