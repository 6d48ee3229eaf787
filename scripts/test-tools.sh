#!/usr/bin/env bash
# Tools the test suite drives as real clients, installed from Debian when missing:
# - gdal-bin: `ogrinfo` reads the OGC API - Features endpoint (tests/integration/gdal.rs);
# - chromium: playwright-core drives it through the managers' map (tests/integration/map_ui.rs);
# - fonts-noto-cjk: the map's Chinese labels render in its screenshots instead of empty boxes, and
#   the audit export's PDF summary embeds the Chinese glyphs it uses from it (tests/integration/exports.rs);
# - poppler-utils: `pdftoppm` renders the audit export's PDF summary, `pdftotext` reads it back;
# - libimage-exiftool-perl: `exiftool` writes real EXIF time and GPS into the photos uploaded in
#   tests/integration/photos.rs;
# - libheif-examples: `heif-enc` makes the HEIC photos of tests/integration/photos.rs and `heif-convert`
#   decodes them in the server (as `make run` installs it);
# - openpyxl (PyPI): reads the audit export's workbook as a real reader (tests/integration/exports.rs);
# - schemathesis (PyPI, project-local venv): fuzzes every API operation (tests/integration/fuzz.rs).
set -euo pipefail
log() { echo "test-tools: $*" >&2; }
missing=()
command -v ogrinfo >/dev/null 2>&1 || missing+=(gdal-bin)
[ -x /usr/bin/chromium ] || missing+=(chromium)
{ command -v pdftoppm && command -v pdftotext; } >/dev/null 2>&1 || missing+=(poppler-utils)
command -v exiftool >/dev/null 2>&1 || missing+=(libimage-exiftool-perl)
command -v heif-enc >/dev/null 2>&1 || missing+=(libheif-examples)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
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
if ! python3 -c 'import openpyxl' 2>/dev/null; then
  log "installing openpyxl"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore openpyxl
fi
# Schemathesis (PyPI, in .tools/venv) fuzzes the API from its OpenAPI document (tests/integration/fuzz.rs).
"$(dirname "$0")/fuzz.sh" --install-only
"$(dirname "$0")/map-ui.sh"
