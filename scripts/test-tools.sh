#!/usr/bin/env bash
# Tools the test suite drives as real clients, installed from Debian when missing:
# - gdal-bin: `ogrinfo` reads the OGC API - Features endpoint (tests/gdal.rs);
# - chromium: playwright-core drives it through the managers' map (tests/map_ui.rs);
# - fonts-noto-cjk: the map's Chinese labels render in its screenshots instead of empty boxes.
set -euo pipefail
log() { echo "test-tools: $*" >&2; }
missing=()
command -v ogrinfo >/dev/null 2>&1 || missing+=(gdal-bin)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || missing+=(fonts-noto-cjk)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing ${missing[*]}; run as root or: apt-get install ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$(dirname "$0")/map-ui.sh"
