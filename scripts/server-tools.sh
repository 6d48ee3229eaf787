#!/usr/bin/env bash
# Programs the server calls when present, installed from Debian when missing (as root):
# - libheif-examples: `heif-convert` decodes HEIC photos for their thumbnail and perceptual hash
#   (FV_HEIC_DECODER). Without it the server still runs and keeps HEIC photos without them.
# - util-linux: `prlimit` bounds the decoder child's memory and CPU time (FV_HEIC_DECODER_*).
# - fonts-noto-cjk: the audit export's PDF summary embeds the Chinese glyphs it uses from it
#   (FV_PDF_FONT). Without it the server still runs and such text prints as `?` in the PDF.
set -euo pipefail
log() { echo "server-tools: $*" >&2; }
missing=()
command -v heif-convert >/dev/null 2>&1 || missing+=(libheif-examples)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
[ -e "${FV_PDF_FONT:-/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc}" ] || missing+=(fonts-noto-cjk)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  log "${missing[*]} missing (HEIC photos get no thumbnail, Chinese prints as ? in PDF summaries); as root: apt-get install ${missing[*]}"
  exit 0
fi
log "installing ${missing[*]}"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
  log "could not install ${missing[*]}; HEIC photos get no thumbnail, Chinese prints as ? in PDF summaries"
fi
