#!/usr/bin/env bash
# Programs the server calls when present, installed from Debian when missing (as root):
# - libheif-examples: `heif-convert` decodes HEIC photos for their thumbnail and perceptual hash
#   (FV_HEIC_DECODER). Without it the server still runs and keeps HEIC photos without them.
set -euo pipefail
log() { echo "server-tools: $*" >&2; }
command -v heif-convert >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  log "heif-convert missing (HEIC photos get no thumbnail); as root: apt-get install libheif-examples"
  exit 0
fi
log "installing libheif-examples"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libheif-examples >/dev/null; }; then
  log "could not install libheif-examples; HEIC photos get no thumbnail"
fi
