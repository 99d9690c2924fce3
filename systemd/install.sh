#!/usr/bin/env bash
# Install (or remove) edge-face as a systemd service. Idempotent: run it again to upgrade.
#
#   sudo systemd/install.sh                 install from this checkout and enable the unit
#   sudo systemd/install.sh --dry-run       print what it would do, change nothing
#   systemd/install.sh --root DIR           install into a staging tree (tests, images)
#   sudo systemd/install.sh --uninstall     stop and remove the unit and the venv
#                                           (keeps /etc/edge-face and /var/lib/edge-face;
#                                           add --purge to remove them too)
#   --package SPEC                          what pip installs (default: this checkout)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
ROOT=""
DRY=0
UNINSTALL=0
PURGE=0
PACKAGE="$REPO"
PYTHON=${PYTHON:-python3}
USER_NAME=edge-face

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=$(realpath -m "$2"); shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    --package) PACKAGE="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

VENV="$ROOT/opt/edge-face/venv"
ETC="$ROOT/etc/edge-face"
STATE="$ROOT/var/lib/edge-face"
UNIT="$ROOT/etc/systemd/system/edge-face.service"

run() {  # print, and do unless --dry-run
  echo "+ $*"
  if [ "$DRY" = 0 ]; then "$@"; fi
}

if [ "$DRY" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo), or use --dry-run or --root DIR" >&2
  exit 1
fi

running_systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }  # else: a chroot, an image

systemctl_() {
  if [ -n "$ROOT" ]; then run systemctl --root="$ROOT" "$@"; else run systemctl "$@"; fi
}

if [ "$UNINSTALL" = 1 ]; then
  if running_systemd; then systemctl_ disable --now edge-face.service || true; else systemctl_ disable edge-face.service || true; fi
  run rm -f "$UNIT"
  if running_systemd; then run systemctl daemon-reload; fi
  run rm -rf "$ROOT/opt/edge-face"
  if [ "$PURGE" = 1 ]; then run rm -rf "$ETC" "$STATE"; fi
  echo "edge-face removed$([ "$PURGE" = 1 ] && echo ', with its config and data' || echo '; config and data kept')"
  exit 0
fi

# 1. The system user, in group video (cameras).
useradd_args=(--system --user-group --no-create-home --home-dir /var/lib/edge-face --shell /usr/sbin/nologin --groups video)
if [ -n "$ROOT" ]; then
  run mkdir -p "$ROOT/etc"
  for f in passwd group shadow gshadow; do [ -e "$ROOT/etc/$f" ] || run touch "$ROOT/etc/$f"; done
  grep -q '^video:' "$ROOT/etc/group" 2>/dev/null || run groupadd --root "$ROOT" --system video
  grep -q "^$USER_NAME:" "$ROOT/etc/passwd" 2>/dev/null || run useradd --root "$ROOT" "${useradd_args[@]}" "$USER_NAME"
else
  getent group video >/dev/null || run groupadd --system video
  id "$USER_NAME" >/dev/null 2>&1 || run useradd "${useradd_args[@]}" "$USER_NAME"
fi
uid_of() { if [ -n "$ROOT" ]; then awk -F: -v u="$1" '$1==u {print $3}' "$ROOT/etc/passwd"; else id -u "$1"; fi; }
gid_of() { if [ -n "$ROOT" ]; then awk -F: -v g="$1" '$1==g {print $3}' "$ROOT/etc/group"; else getent group "$1" | cut -d: -f3; fi; }

# 2. The venv (seeing the system's packages: python3-picamera2 comes from apt on a Pi).
run mkdir -p "$ROOT/opt/edge-face"
[ -x "$VENV/bin/python" ] || run "$PYTHON" -m venv --system-site-packages "$VENV"
run "$VENV/bin/python" -m pip install --quiet --upgrade "$PACKAGE"

# 3. Config (never overwritten), the credential file, the state folder.
run install -d -m 0755 "$ETC"
if [ -e "$ETC/config.toml" ]; then
  echo "  keeping the existing $ETC/config.toml"
else
  run install -m 0644 "$REPO/config.toml" "$ETC/config.toml"
fi
[ -e "$ETC/mqtt_password" ] || run install -m 0600 /dev/null "$ETC/mqtt_password"
run install -d -m 0700 "$STATE"
if [ "$DRY" = 0 ]; then
  run chown "$(uid_of "$USER_NAME"):$(gid_of "$USER_NAME")" "$STATE"
else
  echo "+ chown $USER_NAME:$USER_NAME $STATE"
fi

# 4. The unit.
run install -D -m 0644 "$HERE/edge-face.service" "$UNIT"
if running_systemd; then run systemctl daemon-reload; fi
systemctl_ enable edge-face.service
if [ "$DRY" = 1 ]; then
  echo "dry run: nothing was changed"
elif [ -z "$ROOT" ]; then
  echo "installed. Install a model bundle (the one in this checkout, or a tarball built elsewhere):"
  echo "  sudo $VENV/bin/edge-face --config $ETC/config.toml bundle install $REPO/models/edge-face-dlib-cut"
  echo "enroll people (photos the $USER_NAME user can read) with"
  echo "  sudo -u $USER_NAME $VENV/bin/edge-face --config $ETC/config.toml enroll NAME PHOTOS"
  echo "then: sudo systemctl start edge-face; logs: journalctl -u edge-face -f"
fi
