"""The boards a bundle is built for (``model-export build --target``) and, per board, the
order in which its CPU runs the quantizations fastest (``model_export.quantize``). Kept
apart from quantize.py so that the command line can list them without importing numpy.
"""

from __future__ import annotations

# The boards a bundle can be built for, and why each prefers what it does. Published
# single-thread TFLite 2.18 (XNNPACK) latencies of EfficientDet-Lite0 (bench/pi_estimate.py,
# SOURCES["nobuo_effdet"]): Pi 4 int8 197.8 ms, float32 328.7 ms (1.66x); Pi 5 int8 44.2
# ms, float32 104.0 ms (2.35x: the Cortex-A76 has the dot-product instructions). XNNPACK
# runs int8 PReLU on its reference kernel only (SFace full int8: 31.7 ms a pass against
# 9.6 ms for float32 on the x86 machine of the last make bench), so a PReLU network goes
# int8 weights with float activations (dynamic range: 6.6 ms there, 1.44x float32; on a
# Pi not measured, XNNPACK has the same kernels for 64-bit Arm), then float16 (float32's
# kernels, half the file).
TARGETS: dict[str, str] = {
    "pi4": "Raspberry Pi 4 (Cortex-A72), 64-bit OS: int8 1.66x float32 (published); "
    "a PReLU network: dynamic range",
    "pi5": "Raspberry Pi 5 (Cortex-A76, dot product): int8 2.35x float32 (published); "
    "a PReLU network: dynamic range",
    "pi-zero2": "Raspberry Pi Zero 2 W (Cortex-A53, 512 MB): formats both runtimes load "
    "first (tflite-runtime 2.14 cannot load dynamic range): int8, else float16",
    "x86": "x86-64 with AVX2: int8 (dlib ResNet 1.69 against 6.39 ms float32, measured); "
    "a PReLU network: dynamic range (SFace 6.64 against 9.57 ms, measured)",
    "here": "this machine: every candidate timed here, the fastest accurate one (the rule "
    "below); the pick follows the build machine's CPU and load",
}
DEFAULT_TARGET = "pi4"  # the device the product is made for
PREFERENCE: dict[str, dict[bool, tuple[str, ...]]] = {  # target -> has PReLU -> order
    "pi4": {False: ("int8", "dynamic", "float16", "float32"),
            True: ("dynamic", "float16", "float32", "int8")},
    "pi5": {False: ("int8", "dynamic", "float16", "float32"),
            True: ("dynamic", "float16", "float32", "int8")},
    "pi-zero2": {False: ("int8", "float16", "float32", "dynamic"),
                 True: ("float16", "float32", "int8", "dynamic")},
    "x86": {False: ("int8", "dynamic", "float16", "float32"),
            True: ("dynamic", "float16", "float32", "int8")},
}  # fmt: skip
