#!/usr/bin/env bash
# Installs the Debian packages the course uses, only when missing:
#   fluidsynth  real instrument sounds (course_lib.audio falls back to a built-in synth without it)
#   chromium    the browser test drives JupyterLab in it (never a browser a tool downloads itself)
set -euo pipefail
missing=()
ldconfig -p 2>/dev/null | grep -q libfluidsynth || missing+=(fluidsynth)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  echo "system-deps: please install ${missing[*]} (apt-get install --no-install-recommends ${missing[*]})" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
