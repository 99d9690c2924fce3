# edge-face: the two commands of the README, and the steps they are made of.
#   make demo   sets everything up and runs the main job
#   make test   sets everything up and runs the whole test suite (what CI runs)
# Both work on a fresh Debian / Raspberry Pi OS machine: they create .venv, install the
# project into it, and install the system packages they need with apt-get when run as
# root (or say exactly what to install when not).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
APT_PACKAGES := mosquitto

.PHONY: demo demo-build demo-device test lint bundle bundle-sface bench mutate check-arm64 system-deps venv faults soak clean help

help:
	@echo "make demo    set up and run the demo"
	@echo "make demo-device  the demo with the device dependencies only and the committed bundle"
	@echo "make test    set up and run all tests (ruff + pytest)"
	@echo "make lint    ruff only"
	@echo "make bundle  build (or reuse) the model bundles: build/bundle-sface (the default), build/bundle (dlib)"
	@echo "make bench   benchmarks (see bench/README.md)"
	@echo "make mutate  mutation testing of the decision-making modules: score and survivors"
	@echo "make faults  the fault suite against the real daemon, broker and gallery: docs/RELIABILITY.md"
	@echo "make soak    the daemon for an hour with broker restarts (bench/soak.py), then docs/RELIABILITY.md"

system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "edge-face needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -V 2>&1)." >&2; exit 1; }; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "Missing system packages:$$missing" >&2; \
	    echo "Install them with: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,export]'
	touch $@

venv: system-deps $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

# The model bundle (int8 encoder, detector, landmark model, manifest), built from the
# faces in EDGE_FACE_DATA, or copied from the build cache when its inputs are unchanged.
# build/bundle-sface: OpenCV zoo's SFace, the default (docs/ENCODERS.md: far fewer strangers
# named at the same rate of correct names); build/bundle: dlib's ResNet in full int8 (faster,
# and it loads in tflite-runtime 2.14 as well as LiteRT; the arm64 check and most tests use it).
bundle: bundle-sface
	$(VENV)/bin/model-export build --out build/bundle --encoder dlib

bundle-sface: venv
	$(VENV)/bin/model-export build --out build/bundle-sface --encoder sface

# The demo: enroll the Hamilton clip's three people, start a private mosquitto, run the
# daemon on the clip and print the MQTT events as a subscriber receives them. Where
# TensorFlow has no wheels (a Raspberry Pi, any arm board) it is the device demo below.
demo:
	@if [ "$$(uname -m)" = x86_64 ]; then $(MAKE) --no-print-directory demo-build; else \
	  echo "$$(uname -m): no TensorFlow to build a bundle here: the device demo on the committed bundle"; \
	  $(MAKE) --no-print-directory demo-device; fi

demo-build: bundle-sface
	$(VENV)/bin/model-export verify --bundle build/bundle-sface
	$(PY) scripts/demo.py

# The demo on a device (a Pi, or any small box): only the device dependencies (no
# TensorFlow, no bundle build, no face data beyond the clip) and the committed bundle
# models/edge-face-dlib-cut, in its own venv (.venv-device).
DEVICE_VENV ?= .venv-device
DEVICE_STAMP := $(DEVICE_VENV)/.installed
$(DEVICE_STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(DEVICE_VENV)
	$(DEVICE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEVICE_VENV)/bin/python -m pip install --quiet -e .
	touch $@

demo-device: $(DEVICE_STAMP)
	$(DEVICE_VENV)/bin/python scripts/demo.py --bundle models/edge-face-dlib-cut

# The project in an emulated Raspberry Pi OS arm64 tree (qemu), with ai-edge-litert and with
# tflite-runtime 2.14; embeddings compared with x86 (scripts/check_arm64.sh). Needs root.
# It checks dlib's encoder in full int8, which both runtimes load (build/bundle may be
# dynamic range where this CPU's int8 kernels are slow: tflite-runtime 2.14 cannot load that).
check-arm64: venv
	$(VENV)/bin/model-export build --out build/bundle-int8 --encoder dlib --quantization int8
	bash scripts/check_arm64.sh --bundle build/bundle-int8

# edge-face side by side with face_recognition (dlib) and OpenCV's YuNet + SFace, each
# installed by the benchmark in its own venv under build/: writes
# bench/results/benchmarks.json, docs/BENCHMARKS.md and docs/benchmarks/*.png (bench/README.md);
# then the clusters, the feedback, every encoder in every quantization (docs/ENCODERS.md),
# the detector's threshold and the SFace import against OpenCV's (docs/MODEL_BUNDLE.md), so
# that every recognition figure in README and docs/ comes from this one run. About 50
# minutes on 2 cores with every bundle cached (46 on 2026-12-07), about 20 more the first
# time (bench/encoders.py builds 6 bundles).
bench: bundle
	$(PY) bench/suite.py --bundle build/bundle-sface --bundle build/bundle --bundle models/edge-face-dlib-cut
	$(PY) bench/clusters.py
	$(PY) bench/feedback.py
	$(PY) bench/encoders.py
	$(PY) bench/detector.py
	$(PY) bench/sface_vs_opencv.py

# Mutation testing (mutmut, [tool.mutmut] in pyproject.toml) of the modules that decide:
# every mutant of decision, recognize, pipeline, tracker, gallery, db, outbox, payloads and
# config is run against the unit tests; prints the score per module and every survivor
# with its explanation (scripts/mutation_survivors.toml). About 10 minutes on 2 cores.
EDGE_FACE_DATA ?= $(abspath ../shared/faces)
mutate: venv
	rm -rf mutants
	EDGE_FACE_DATA=$(EDGE_FACE_DATA) $(VENV)/bin/mutmut run --max-children $$(nproc) > mutants.log 2>&1 || { tail -n 30 mutants.log; exit 1; }
	$(PY) scripts/mutation_report.py

# The fault suite (issue 29, bench/faults.py): broker restarts, a network partition, power
# cuts during enroll and outbox writes, clock jumps, a full disk, a stalled or garbage
# camera, tampered bundles, a damaged gallery, each injected into the real daemon, mosquitto
# and gallery; writes bench/results/faults.json and renders docs/RELIABILITY.md (with the
# fuzz and soak results when they exist). About 7 minutes on 2 cores; exit 1 when a fault
# did not behave as expected. The disk-full fault needs root (a tmpfs of its own).
faults: bundle-sface
	$(PY) bench/faults.py

# The soak (issue 29, bench/soak.py): the daemon for an hour on the looped clip, the broker
# restarted every 3 minutes; writes bench/results/soak.json, then docs/RELIABILITY.md again.
soak: bundle-sface
	$(PY) bench/soak.py --minutes 60 --restart-every 180
	$(PY) bench/reliability_doc.py

clean:
	rm -rf $(VENV) $(DEVICE_VENV) build dist mutants mutants.log *.egg-info .pytest_cache .ruff_cache
