#!/usr/bin/env bash
# check_arm64.sh: edge-face on an emulated Raspberry Pi (arm64), from PyPI's aarch64 wheels.
#
# Builds (once, then cached in ~/.cache/edge-face/arm64-root) a Debian bookworm arm64 tree, the base of
# Raspberry Pi OS, with its Python 3.11, and runs it under qemu-user as a Cortex-A72 (the
# Raspberry Pi 4's CPU). In the tree, two virtual environments install the project the way
# a Pi would:
#   venv-litert   pip install edge-face (its wheel, built from this working tree) with
#                 its dependencies: numpy 2, OpenCV headless, ai-edge-litert, ...
#   venv-tflite   tflite-runtime 2.14 and numpy<2, the project with --no-deps, and its
#                 other dependencies (no LiteRT: the loader must fall back)
# and scripts/arm64_check.py runs in each: load the bundle (hashes checked), embed 10 LFW
# faces, enroll 3 people and identify obama1.jpg, publish one MQTT message to a mosquitto
# on this host (the chroot shares the host's network). The same script runs natively in
# .venv as the reference; the table at the end compares every run's embeddings with it.
#
# Usage: sudo scripts/check_arm64.sh [--bundle DIR] [--fresh] [--fresh-venvs]
#   --bundle DIR    the model bundle (default build/bundle; `make bundle` makes it)
#   --fresh         rebuild the arm64 tree (and its venvs) from scratch
#   --fresh-venvs   rebuild only the venvs (e.g. to take newer releases from PyPI)
# Face photos: $EDGE_FACE_DATA (default ../shared/faces beside the repository).
# Needs root (mount, chroot, binfmt_misc), Debian/Ubuntu's apt-get for qemu-user-static,
# binfmt-support, mmdebstrap and mosquitto (installed when missing), and access to the
# Debian mirror and PyPI. Exit status: 0 when every check passed, 1 otherwise.
# Cold (no cached tree): about 6.5 minutes on 2 cores; warm (tree and venvs cached): about 2 minutes.
set -eEuo pipefail  # -E: the ERR trap below also reports failures inside functions

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$REPO/build
# Cached across clones and CI runs, beside the model bundle cache.
CACHE=${EDGE_FACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-face}
ROOT=$CACHE/arm64-root            # the cached arm64 tree
# pip's cache for the tree (aarch64 wheels). pip stores only what the index lets it
# cache: PyPI's Cache-Control headers allow it, a proxy that strips them does not.
PIP_CACHE=$CACHE/arm64-pip-cache
OUT=$BUILD/arm64-check            # results: <run>.npy, <run>.json, broker files
CPUINFO=$BUILD/arm64-cpuinfo      # a Raspberry Pi 4's /proc/cpuinfo, bound into the tree
HOST_PY=$REPO/.venv/bin/python
BUNDLE=$BUILD/bundle
DATA=${EDGE_FACE_DATA:-$REPO/../shared/faces}

SUITE=bookworm
MIRROR=${ARM64_MIRROR:-http://deb.debian.org/debian}
# The essential set (dpkg, a shell, passwd, ...) plus what the wheels need: Python and
# the C/C++ runtime. OpenCV's headless wheel bundles everything else it links.
VARIANT=essential
PACKAGES=python3,python3-venv,python3-pip,libstdc++6,libgcc-s1,zlib1g,libgomp1
TREE_KEY="$SUITE $VARIANT $PACKAGES v1"

# Where things are inside the tree; main/ and shared/faces keep the repository's layout,
# so the default ../shared/faces would work there too.
T_SRC=/srv/edge-face/main
T_DATA=/srv/edge-face/shared/faces
T_BUNDLE=/srv/edge-face/bundle
T_OUT=/srv/edge-face/out
T_WHEELS=/srv/edge-face/wheels
T_LITERT=/opt/venv-litert
T_TFLITE=/opt/venv-tflite

FRESH_TREE=0
FRESH_VENVS=0
while [ $# -gt 0 ]; do
    case $1 in
        --bundle) BUNDLE=$2; shift 2 ;;
        --fresh) FRESH_TREE=1; FRESH_VENVS=1; shift ;;
        --fresh-venvs) FRESH_VENVS=1; shift ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "check_arm64: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

START=$SECONDS
TIMINGS=()     # "what: seconds" per step, printed at the end
MOUNTS=()      # every mount we made, unmounted in reverse order on exit
PIDS=()        # background processes we started (broker, subscriber)
STEP_NAME=""
STEP_START=0
HAVE_LOCK=0

die() { echo "check_arm64: error: $*" >&2; exit 1; }

step() {  # a heading for the next step; closes the previous one's timing
    end_step
    STEP_NAME=$1
    STEP_START=$SECONDS
    printf '\n==== [%3ds] %s\n' "$((SECONDS - START))" "$1"
}

end_step() {
    if [ -n "$STEP_NAME" ]; then
        TIMINGS+=("$(printf '%4ds  %s' "$((SECONDS - STEP_START))" "$STEP_NAME")")
        STEP_NAME=""
    fi
}

# shellcheck disable=SC2317  # (shellcheck 0.9 cannot see that the trap calls it)
cleanup() {
    local rc=$? i pid
    set +e
    trap - EXIT INT TERM ERR
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" \
            || echo "check_arm64: could not unmount ${MOUNTS[i]}" >&2
    done
    # Only the run holding the lock may clear the tree's mounts (not one still waiting).
    if [ "$HAVE_LOCK" = 1 ]; then unmount_stale; fi
    exit "$rc"
}

unmount_stale() {  # whatever is still mounted under the tree (e.g. a killed run's)
    local target
    if [ -d "$ROOT" ] || [ -d "$ROOT.new" ]; then
        { findmnt -rn -o TARGET | grep -F -e "$ROOT/" -e "$ROOT.new/" || true; } | sort -r \
            | while read -r target; do
            umount "$target" 2>/dev/null || umount -l "$target"
        done
    fi
}

bind() {  # bind SOURCE TARGET [ro]: a bind mount inside the tree, remembered for cleanup
    if [ -d "$1" ]; then mkdir -p "$2"; else touch "$2"; fi
    if [ "${3:-}" = ro ]; then mount --bind -o ro "$1" "$2"; else mount --bind "$1" "$2"; fi
    MOUNTS+=("$2")
}

# Run a command in the tree, emulated as a Cortex-A72. env -i: nothing of the host's
# environment (PIP_*, EDGE_FACE_*, ...) leaks in; PIP_CONFIG_FILE=/dev/null makes pip
# read no config file at all (the host's /etc/pip.conf and /etc/xdg/pip are outside the
# chroot anyway, and the tree has none).
in_root() {
    local env=(HOME=/root LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
        QEMU_CPU=cortex-a72 PIP_CONFIG_FILE=/dev/null PIP_CACHE_DIR=/root/.cache/pip
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off
        PIP_DEFAULT_TIMEOUT=120 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
        "EDGE_FACE_DATA=$T_DATA")
    local var
    for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        if [ -n "${!var:-}" ]; then env+=("$var=${!var}"); fi
    done
    env -i "${env[@]}" chroot "$ROOT" "$@"
}

write_cpuinfo() {  # what a Raspberry Pi 4 Model B shows (ai-edge-litert crashes on qemu's)
    local cpu
    for cpu in 0 1 2 3; do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\n' "$cpu"
        printf 'Features\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n'
        printf 'CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done
    printf 'Hardware\t: BCM2835\nRevision\t: c03114\nSerial\t\t: 10000000deadbeef\n'
    printf 'Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n'
}

trap cleanup EXIT
trap 'echo "check_arm64: error: line $LINENO failed: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
step "preflight"
[ "$(id -u)" = 0 ] || die "needs root (mount, chroot, binfmt_misc): sudo $0"
[ -f "$BUNDLE/manifest.json" ] || die "no model bundle at $BUNDLE: run \`make bundle\` first"
[ -d "$DATA/lfw" ] || die "no face photos at $DATA: set EDGE_FACE_DATA to the shared faces folder"
[ -x "$HOST_PY" ] || die "no $HOST_PY (the x86 reference runs there): run \`make venv\` first"
BUNDLE=$(realpath "$BUNDLE")
DATA=$(realpath "$DATA")
mkdir -p "$BUILD" "$PIP_CACHE"
# One run at a time: the tree, its venvs and its mounts are shared.
exec 9>"$BUILD/arm64-root.lock"
if ! flock -n 9; then
    echo "another check_arm64.sh is running; waiting for it"
    flock 9
fi
HAVE_LOCK=1
unmount_stale
HOST_ARCH=$(uname -m)
echo "host $HOST_ARCH, bundle $BUNDLE, faces $DATA, tree $ROOT"

# ---------------------------------------------------------------------------------------
step "host tools (qemu-user-static, binfmt-support, mmdebstrap, mosquitto)"
missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
if [ "$HOST_ARCH" != aarch64 ]; then
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
fi
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "install ${missing[*]} (no apt-get here)"
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

if [ "$HOST_ARCH" != aarch64 ]; then
    # Run arm64 binaries through qemu: binfmt_misc, and only the qemu-aarch64 entry.
    BINFMT=/proc/sys/fs/binfmt_misc
    if ! mountpoint -q "$BINFMT"; then
        mount -t binfmt_misc binfmt_misc "$BINFMT" || die "cannot mount binfmt_misc"
    fi
    if [ "$(head -n1 "$BINFMT/qemu-aarch64" 2>/dev/null)" != enabled ]; then
        update-binfmts --enable qemu-aarch64
    fi
    [ "$(head -n1 "$BINFMT/qemu-aarch64")" = enabled ] || die "qemu-aarch64 binfmt not enabled"
    # Debian registers it with the F flag (the interpreter is opened now, so the tree
    # needs no qemu binary of its own); without F, copy it in.
    grep -q '^flags:.*F' "$BINFMT/qemu-aarch64" || NEED_QEMU_IN_TREE=1
fi

# ---------------------------------------------------------------------------------------
step "arm64 tree: Debian $SUITE ($VARIANT + python3), cached in ~/.cache/edge-face/arm64-root"
if [ "$FRESH_TREE" = 1 ] || [ "$(cat "$ROOT/.edge-face-tree" 2>/dev/null)" != "$TREE_KEY" ]; then
    unmount_stale
    # --one-file-system: never follow a mount out of the tree, whatever happened before
    rm -rf --one-file-system "$ROOT" "$ROOT.new"
    # mmdebstrap runs the packages' maintainer scripts under qemu: about 2.5 minutes.
    mmdebstrap --arch=arm64 --variant="$VARIANT" --include="$PACKAGES" \
        "$SUITE" "$ROOT.new" "$MIRROR"
    echo "$TREE_KEY" >"$ROOT.new/.edge-face-tree"
    mv "$ROOT.new" "$ROOT"  # only a complete tree is ever cached
else
    echo "using the cached tree ($(cat "$ROOT/.edge-face-tree"))"
fi
if [ "${NEED_QEMU_IN_TREE:-0}" = 1 ]; then cp /usr/bin/qemu-aarch64-static "$ROOT/usr/bin/"; fi
# The host's CA bundle (it may hold a proxy's CA the Debian one lacks) and resolver.
cp -L /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
write_cpuinfo >"$CPUINFO"

# ---------------------------------------------------------------------------------------
step "copy the working tree and the bundle in; mount proc, sys, faces, pip cache"
rm -rf --one-file-system "$ROOT/srv/edge-face"
mkdir -p "$ROOT$T_SRC" "$ROOT$T_WHEELS" "$OUT"
# The working tree as git sees it (tracked and untracked, minus what .gitignore ignores:
# .venv, build, caches), so uncommitted edits are tested, as .venv's editable install does.
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do  # tracked files deleted in the tree are skipped
            if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
        done | tar --null --no-recursion -T - -cf -) \
        | tar -xf - -C "$ROOT$T_SRC"
else
    tar -C "$REPO" --exclude=./.venv --exclude=./build --exclude=./.git -cf - . \
        | tar -xf - -C "$ROOT$T_SRC"
fi
# A copy, not a bind mount: `make bundle` (and the tests' bundle fixture) replace
# build/bundle with a new folder, which would leave a bind mount on the deleted one. The
# host's reference run reads this same copy, so every run embeds with the same files.
cp -a "$BUNDLE" "$ROOT$T_BUNDLE"
rm -f "$OUT"/*.npy "$OUT"/*.json "$OUT"/received.txt "$OUT"/subscribed
mount -t proc proc "$ROOT/proc"
MOUNTS+=("$ROOT/proc")
# qemu-user shows the host's /proc/cpuinfo (x86), on which ai-edge-litert segfaults.
bind "$CPUINFO" "$ROOT/proc/cpuinfo" ro
# /sys: XNNPACK's cpuinfo reads the CPU lists there; without it, it falls back to other
# kernels and LiteRT's embeddings are no longer bit-identical to a real Cortex-A72's.
bind /sys "$ROOT/sys" ro
bind "$DATA" "$ROOT$T_DATA" ro
bind "$PIP_CACHE" "$ROOT/root/.cache/pip"
bind "$OUT" "$ROOT$T_OUT"
in_root /usr/bin/python3 -c 'import platform, sys
print("tree:", platform.machine(), "Python", sys.version.split()[0], open("/proc/cpuinfo").read().splitlines()[-1])'

# ---------------------------------------------------------------------------------------
step "build the edge-face wheel in the tree (pip wheel, setuptools from PyPI)"
in_root /usr/bin/python3 -m pip wheel --quiet --no-deps -w "$T_WHEELS" "$T_SRC"
WHEEL=$(cd "$ROOT$T_WHEELS" && ls edge_face-*.whl)
echo "$WHEEL"

# The dependency lists, from pyproject.toml: the venvs are rebuilt when they change.
DEPS_JSON=$("$HOST_PY" -c 'import json, tomllib, sys
p = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(json.dumps([p["dependencies"], p["optional-dependencies"]["tflite-runtime"]]))' \
    "$REPO/pyproject.toml")
mapfile -t TFLITE_REQS < <("$HOST_PY" -c 'import json, re, sys
base, extra = json.loads(sys.argv[1])
for r in base + extra:
    if re.match(r"ai[-_]edge[-_]litert\b", r) is None:
        print(r)' "$DEPS_JSON")
VENV_KEY=$(printf '%s\n' "$DEPS_JSON" "$TREE_KEY" | sha256sum | cut -c1-16)

cached_venv() {  # cached_venv DIR: the venv exists for these dependencies (and no --fresh)
    [ "$FRESH_VENVS" = 0 ] && [ "$(cat "$ROOT$1/.edge-face-key" 2>/dev/null)" = "$VENV_KEY" ]
}

new_venv() {  # new_venv DIR: an empty venv in the tree
    rm -rf --one-file-system "$ROOT$1"
    in_root /usr/bin/python3 -m venv "$1"
    # No pip config may leak in: pip must see no config file (the chroot has none, and
    # PIP_CONFIG_FILE=/dev/null), only in_root's own PIP_* settings (":env:" lines).
    local config
    config=$(in_root "$1/bin/pip" config list | grep -v "^:env:" || true)
    [ -z "$config" ] || die "pip in the tree sees a configuration: $config"
}

# ---------------------------------------------------------------------------------------
step "venv-litert: edge-face with its dependencies (numpy 2, ai-edge-litert)"
if cached_venv "$T_LITERT"; then
    echo "cached $T_LITERT (dependencies unchanged): reinstalling only edge-face"
    in_root "$T_LITERT/bin/pip" install --quiet --no-deps --force-reinstall "$T_WHEELS/$WHEEL"
else
    new_venv "$T_LITERT"
    in_root "$T_LITERT/bin/pip" install "$T_WHEELS/$WHEEL"
    echo "$VENV_KEY" >"$ROOT$T_LITERT/.edge-face-key"
fi
in_root "$T_LITERT/bin/pip" list --format=freeze | grep -iE '^(numpy|opencv|ai.edge|edge.face)'

# ---------------------------------------------------------------------------------------
step "venv-tflite: tflite-runtime 2.14, numpy<2, edge-face --no-deps"
if cached_venv "$T_TFLITE"; then
    echo "cached $T_TFLITE (dependencies unchanged): reinstalling only edge-face"
    in_root "$T_TFLITE/bin/pip" install --quiet --no-deps --force-reinstall "$T_WHEELS/$WHEEL"
else
    new_venv "$T_TFLITE"
    echo "requirements: ${TFLITE_REQS[*]}"
    in_root "$T_TFLITE/bin/pip" install "${TFLITE_REQS[@]}"
    in_root "$T_TFLITE/bin/pip" install --no-deps "$T_WHEELS/$WHEEL"
    echo "$VENV_KEY" >"$ROOT$T_TFLITE/.edge-face-key"
fi
in_root "$T_TFLITE/bin/pip" list --format=freeze | grep -iE '^(numpy|opencv|tflite|ai.edge|edge.face)'

# ---------------------------------------------------------------------------------------
step "broker: mosquitto on 127.0.0.1 and a subscriber on the host"
PORT=$("$HOST_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOPIC="edge-face/arm64-check/$$"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nuser %s\n' \
    "$PORT" "$(id -un)" >"$OUT/mosquitto.conf"
"$MOSQUITTO" -c "$OUT/mosquitto.conf" >"$OUT/mosquitto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
"$HOST_PY" "$REPO/scripts/arm64_check.py" listen --mqtt-port "$PORT" --topic "$TOPIC" \
    --out "$OUT/received.txt" --ready "$OUT/subscribed" &
PIDS+=($!)
for _ in $(seq 100); do [ -e "$OUT/subscribed" ] && break; sleep 0.1; done
[ -e "$OUT/subscribed" ] || die "the host's subscriber could not subscribe (see $OUT/mosquitto.log)"
echo "mosquitto on 127.0.0.1:$PORT, topic $TOPIC"

# ---------------------------------------------------------------------------------------
HOST_RUN=host-$HOST_ARCH
step "reference: $HOST_RUN with .venv (ai-edge-litert)"
CHECK=(check --out "$OUT" --mqtt-port "$PORT" --topic "$TOPIC")
status=0
EDGE_FACE_DATA=$DATA "$HOST_PY" "$REPO/scripts/arm64_check.py" "${CHECK[@]}" \
    --bundle "$ROOT$T_BUNDLE" --label "$HOST_RUN" --expect-runtime ai-edge-litert || status=1

# ---------------------------------------------------------------------------------------
# One after the other: side by side they were no faster on 2 cores (qemu and OpenCV use
# more than one thread each). A failed run does not stop the other; the report says.
T_CHECK=(check --out "$T_OUT" --mqtt-port "$PORT" --topic "$TOPIC" --bundle "$T_BUNDLE")
step "arm64 check with ai-edge-litert (emulated Cortex-A72)"
in_root "$T_LITERT/bin/python" "$T_SRC/scripts/arm64_check.py" "${T_CHECK[@]}" \
    --label arm64-litert --expect-runtime ai-edge-litert || status=1
step "arm64 check with tflite-runtime 2.14 (emulated Cortex-A72)"
in_root "$T_TFLITE/bin/python" "$T_SRC/scripts/arm64_check.py" "${T_CHECK[@]}" \
    --label arm64-tflite --expect-runtime tflite-runtime || status=1
sleep 1  # the subscriber writes each message as it arrives; let the last one land

# ---------------------------------------------------------------------------------------
step "compare with the $HOST_RUN reference"
"$HOST_PY" "$REPO/scripts/arm64_check.py" report --out "$OUT" --reference "$HOST_RUN" \
    --received "$OUT/received.txt" arm64-litert arm64-tflite || status=1
end_step

echo
echo "timings:"
printf '  %s\n' "${TIMINGS[@]}"
printf '  %4ds  total\n' "$((SECONDS - START))"
if [ "$status" = 0 ]; then
    echo "check_arm64: OK: edge-face works on arm64 with ai-edge-litert and tflite-runtime"
else
    echo "check_arm64: FAILED (see above; results in $OUT)" >&2
fi
exit "$status"
