"""Read dlib DNN ``.dat`` files (e.g. ``dlib_face_recognition_resnet_model_v1.dat``)
with pure numpy into typed, immutable structures.

File layout of a serialized ``loss_metric<... input_rgb_image_sized<150>>``:

1. ``add_loss_layer``: version 1, the loss details, then the subnetwork.
2. Each ``add_layer`` writes its version (2; 3 for the one directly on top of
   the input layer) and then *recursively* its subnetwork *before* its own
   details, so the file holds the chain of versions outer-to-inner, then the
   input layer, then every layer's details inner-to-outer (= forward order).
   ``add_tag_layer``/``add_skip_layer`` write only version 1 + subnetwork, so
   they appear as indistinguishable ``tag_or_skip`` markers.
3. After its details each ``add_layer`` writes 3 bools and 3 (empty) state
   tensors; version 3 adds ``_sample_expansion_factor``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model_export.dlib_arch import check_architecture
from model_export.dlib_serialize import DlibFormatError, Reader, split_params

__all__ = ["DlibFormatError", "DlibInput", "DlibLayer", "DlibNet", "read_dlib_dat"]

log = logging.getLogger(__name__)

Attrs = Mapping[str, int | float]
_TAG_OR_SKIP = 1
_ADD_LAYER = 2
_ADD_LAYER_ON_INPUT = 3


@dataclass(frozen=True, eq=False)
class DlibLayer:
    """One computational layer, in forward (input-to-output) order."""

    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc, tag_or_skip
    serial_name: str = ""  # the name string dlib wrote, e.g. "con_4"
    attrs: Attrs = field(default_factory=dict)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class DlibInput:
    kind: str
    mean_rgb: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True, eq=False)
class DlibNet:
    loss: str
    margin: float
    distance_threshold: float
    input: DlibInput
    layers: tuple[DlibLayer, ...]

    def kinds(self) -> list[str]:
        return [layer.kind for layer in self.layers]


def _read_con(r: Reader, name: str) -> DlibLayer:
    params = r.tensor()
    keys = ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    attrs: dict[str, int | float] = {k: r.int() for k in keys}
    filt_shape, bias_shape = r.alias_shape(), r.alias_shape()
    for k in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
        attrs[k] = r.float()
    filters, biases = split_params(params, filt_shape, bias_shape)
    return DlibLayer("con", name, attrs, {"filters": filters, "biases": biases.reshape(-1)})


def _read_affine(r: Reader, name: str) -> DlibLayer:
    params = r.tensor()
    gamma, beta = split_params(params, r.alias_shape(), r.alias_shape())
    attrs = {"mode": r.int()}  # 0 = CONV_MODE (per channel), 1 = FC_MODE
    return DlibLayer("affine", name, attrs, {"gamma": gamma, "beta": beta})


def _read_pool(kind: str) -> Callable[[Reader, str], DlibLayer]:
    def read(r: Reader, name: str) -> DlibLayer:
        keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return DlibLayer(kind, name, {k: r.int() for k in keys})

    return read


def _read_fc(r: Reader, name: str) -> DlibLayer:
    attrs: dict[str, int | float] = {"num_outputs": r.int(), "num_inputs": r.int()}
    params = r.tensor()
    w_shape, b_shape = r.alias_shape(), r.alias_shape()
    attrs["bias_mode"] = r.int()  # 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS
    for k in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
        attrs[k] = r.float()
    shapes = (w_shape, b_shape) if attrs["bias_mode"] == 0 else (w_shape,)
    arrays = dict(zip(("weights", "biases"), split_params(params, *shapes), strict=False))
    arrays["weights"] = arrays["weights"].reshape(w_shape[0], w_shape[1])
    return DlibLayer("fc", name, attrs, arrays)


_PARSERS: dict[str, Callable[[Reader, str], DlibLayer]] = {
    "con_4": _read_con,
    "affine_": _read_affine,
    "relu_": lambda r, name: DlibLayer("relu", name),
    "max_pool_2": _read_pool("max_pool"),
    "avg_pool_2": _read_pool("avg_pool"),
    "add_prev_": lambda r, name: DlibLayer("add_prev", name),
    "fc_2": _read_fc,
}


def _read_details(r: Reader, on_input: bool) -> DlibLayer:
    start = r.pos
    name = r.string()
    parser = _PARSERS.get(name)
    if parser is None:
        raise DlibFormatError(f"unsupported layer {name!r} at byte {start}")
    layer = parser(r, name)
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, output disabled
        r.bool()
    for _ in range(3):  # x_grad, cached_output, params_grad/grad_final (empty in saved nets)
        r.tensor()
    if on_input:
        r.expect_int(1, "_sample_expansion_factor")
    return layer


def _read_input(r: Reader) -> DlibInput:
    kind = r.expect_string("input_rgb_image_sized")
    mean = (r.float(), r.float(), r.float())
    return DlibInput(kind, mean, r.int(), r.int())


def parse_dlib_net(data: bytes) -> DlibNet:
    """Parse the bytes of a ``loss_metric`` dlib network (no architecture check)."""
    r = Reader(data)
    r.expect_int(1, "add_loss_layer version")
    loss = r.expect_string("loss_metric_2")
    margin, threshold = r.float(), r.float()
    versions: list[int] = []
    while not versions or versions[-1] != _ADD_LAYER_ON_INPUT:
        version = r.int()
        if version not in (_TAG_OR_SKIP, _ADD_LAYER, _ADD_LAYER_ON_INPUT):
            raise DlibFormatError(f"unexpected layer version {version} at byte {r.pos}")
        versions.append(version)
    net_input = _read_input(r)
    layers: list[DlibLayer] = []
    for version in reversed(versions):
        if version == _TAG_OR_SKIP:
            layers.append(DlibLayer("tag_or_skip"))
        else:
            layers.append(_read_details(r, on_input=version == _ADD_LAYER_ON_INPUT))
    if r.remaining:
        raise DlibFormatError(f"{r.remaining} trailing bytes after the network")
    return DlibNet(loss, margin, threshold, net_input, tuple(layers))


def read_dlib_dat(path: str | Path, check: bool = True) -> DlibNet:
    """Read a dlib face-recognition ResNet ``.dat`` and (by default) verify that its
    layer sequence is exactly dlib's ``anet_type`` from dnn_face_recognition_ex.cpp."""
    net = parse_dlib_net(Path(path).read_bytes())
    counts = {k: net.kinds().count(k) for k in sorted(set(net.kinds()))}
    log.info("read %s: %d layers %s", path, len(net.layers), counts)
    if check:
        check_architecture(net)
    return net
