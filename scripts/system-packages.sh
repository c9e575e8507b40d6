#!/usr/bin/env bash
# Install the Debian packages hotline needs, only those missing. Uses the machine's own apt
# configuration (its mirror); no registry host is named here.
set -euo pipefail

PACKAGES=(
  python3-venv          # .venv
  debootstrap           # builds the Asterisk 22 root from Debian sid (hotline pbx install)
  sip-tester            # SIPp phones and carriers for the real-call tests
  espeak-ng sox         # Mandarin voice prompts, audio checks
  ffmpeg                # recording transcode
  chromium fonts-wqy-microhei  # headless browser tests; CJK glyphs
  postgresql-client     # pg_dump / pg_restore for online backup
  procps iproute2       # pgrep, ss: process and port checks
  gcc libc6-dev         # builds recordings/_pcm.c (make install)
)
# ... and the headers of the Python the venv is made from (a pyenv Python has its own).
if ! python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  PACKAGES+=(python3-dev)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "error: need root to install: ${missing[*]}. Run as root, or: apt-get install ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages: done"
