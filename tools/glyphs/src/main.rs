//! `fieldvisit-glyphs FONT OUT_DIR [LAST]`: writes MapLibre glyph ranges `OUT_DIR/{start}-{end}.pbf`
//! (256 code points each, from 0 up to the range holding `LAST`, default U+20FF) of the font at
//! `FONT`, rendered as signed distance fields the way MapLibre expects (24 px, radius 8, cutoff
//! 0.25). The map UI's road and place labels use them for Latin text; CJK comes from the browser.
//!
//! Only the Latin ranges ([`LATIN`]: Basic Latin and Latin-1, Latin Extended-A/B, IPA and spacing
//! modifiers, combining marks and Greek, Latin Extended Additional, punctuation and currency)
//! carry glyphs; every other range is written empty, so that a label in another script costs a
//! 31-byte answer rather than a 404, and the whole set stays small enough to commit (~0.6 MB).

use pbf_font_tools::prost::Message;
use std::path::PathBuf;
use std::process::ExitCode;

/// First code points of the ranges written with their glyphs.
const LATIN: [u32; 6] = [0, 256, 512, 768, 7680, 8192];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(font), Some(out)) = (args.first(), args.get(1)) else {
        eprintln!("usage: fieldvisit-glyphs FONT OUT_DIR [LAST_CODE_POINT_HEX]");
        return ExitCode::from(2);
    };
    let last = match args.get(2).map(|h| u32::from_str_radix(h.trim_start_matches("0x"), 16)) {
        None => 0x20FF,
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            eprintln!("LAST_CODE_POINT_HEX: {e}");
            return ExitCode::from(2);
        }
    };
    let out = PathBuf::from(out);
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("{}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    let mut total = 0usize;
    for start in (0..=last).step_by(256) {
        let end = start + 255;
        let glyphs = if LATIN.contains(&start) {
            pbf_font_tools::glyph_range_for_font(font, start, end, 24, 8, 0.25)
        } else {
            pbf_font_tools::glyph_range_for_font(font, start, start, 24, 8, 0.25).map(|mut g| {
                for stack in &mut g.stacks {
                    stack.glyphs.clear();
                    stack.range = format!("{start}-{end}");
                }
                g
            })
        };
        let glyphs = match glyphs {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{font} {start}-{end}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let bytes = glyphs.encode_to_vec();
        total += bytes.len();
        let path = out.join(format!("{start}-{end}.pbf"));
        if let Err(e) = std::fs::write(&path, &bytes) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("{total} bytes of glyphs in {}", out.display());
    ExitCode::SUCCESS
}
