#!/usr/bin/env bash
# Tools the test suite drives as real clients, installed from Debian when missing:
# - gdal-bin: `ogrinfo` reads the OGC API - Features endpoint (tests/gdal.rs).
set -euo pipefail
log() { echo "test-tools: $*" >&2; }
if command -v ogrinfo >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  log "ogrinfo missing; run as root or: apt-get install gdal-bin"
  exit 1
fi
log "installing gdal-bin (ogrinfo)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gdal-bin >/dev/null
