#!/usr/bin/env bash
# Rebuilds the map UI's label glyphs (map-ui/glyphs/dejavu-sans/*.pbf, committed) from Debian's
# DejaVu Sans with tools/glyphs (pbf_font_tools over the system FreeType). Needed only when the
# font or the ranges change: `apt-get install fonts-dejavu-core libfreetype-dev pkg-config` first.
set -euo pipefail
cd "$(dirname "$0")/.."
font=${FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf}
out=map-ui/glyphs/dejavu-sans
rm -rf "$out"
cargo run --quiet --release --manifest-path tools/glyphs/Cargo.toml -- "$font" "$out"
