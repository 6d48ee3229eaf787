//! The demo's storefront photos: a JPEG whose picture is drawn from a number (the same number,
//! the same bytes: a reused photo is the same file), with the EXIF capture time
//! (`DateTimeOriginal` + `OffsetTimeOriginal`) and GPS position (and GPS clock) written into it,
//! as a phone camera writes them.
//!
//! The EXIF block is built here by hand (an APP1 segment holding a small big-endian TIFF
//! structure: IFD0 pointing at an Exif IFD and a GPS IFD) rather than with a crate: seven tags are
//! needed, the bytes must be deterministic, and `make run` has no exiftool. The server's own
//! reader (`fieldvisit::imaging::read`, kamadak-exif) reads it back in the tests.

use chrono::{DateTime, Datelike, FixedOffset, Offset, Timelike, Utc};
use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Picture size in pixels (square), and the blocks per side of its pattern.
const SIDE: u32 = 256;
const BLOCKS: u32 = 8;

/// Where and when a photo was taken (EXIF).
#[derive(Debug, Clone, Copy)]
pub struct Exif {
    pub taken_at: DateTime<Utc>,
    /// UTC offset of the camera's clock, seconds (`OffsetTimeOriginal`).
    pub utc_offset_s: i32,
    pub lat: f64,
    pub lon: f64,
}

/// The JPEG of picture `picture` with `exif` written into it. The pixels depend on `picture`
/// alone; the file on both.
pub fn jpeg(picture: u64, exif: &Exif) -> Result<Vec<u8>, image::ImageError> {
    let plain = pixels_jpeg(picture)?;
    Ok(with_exif(&plain, &app1(exif)))
}

/// A block pattern of colours drawn from `picture`, encoded as a baseline JPEG (quality 85).
fn pixels_jpeg(picture: u64) -> Result<Vec<u8>, image::ImageError> {
    let mut rng = StdRng::seed_from_u64(picture ^ 0x5eed_f00d);
    let block = SIDE / BLOCKS;
    let colours: Vec<[u8; 3]> = (0..BLOCKS * BLOCKS).map(|_| rng.random::<[u8; 3]>()).collect();
    let mut rgb = Vec::with_capacity((SIDE * SIDE * 3) as usize);
    for y in 0..SIDE {
        for x in 0..SIDE {
            rgb.extend_from_slice(&colours[((y / block) * BLOCKS + x / block) as usize]);
        }
    }
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 85).write_image(&rgb, SIDE, SIDE, ExtendedColorType::Rgb8)?;
    Ok(out)
}

/// The JPEG with the APP1 segment put right after its SOI marker.
fn with_exif(jpeg: &[u8], app1: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(jpeg.len() + app1.len());
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

// TIFF field types.
const BYTE: u16 = 1;
const ASCII: u16 = 2;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;

/// One IFD entry: tag, type, count and the value's bytes (big-endian).
struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    value: Vec<u8>,
}

fn ascii(tag: u16, text: &str) -> Entry {
    let mut value = text.as_bytes().to_vec();
    value.push(0);
    Entry { tag, kind: ASCII, count: value.len() as u32, value }
}

fn long(tag: u16, v: u32) -> Entry {
    Entry { tag, kind: LONG, count: 1, value: v.to_be_bytes().to_vec() }
}

fn rationals(tag: u16, parts: &[(u32, u32)]) -> Entry {
    let value = parts.iter().flat_map(|(n, d)| n.to_be_bytes().into_iter().chain(d.to_be_bytes())).collect();
    Entry { tag, kind: RATIONAL, count: parts.len() as u32, value }
}

/// Degrees as EXIF's degrees, minutes, seconds (seconds in 1/1000).
fn dms(deg: f64) -> [(u32, u32); 3] {
    let millis = (deg.abs() * 3_600_000.0).round() as u64;
    let (d, rest) = (millis / 3_600_000, millis % 3_600_000);
    let (m, s) = (rest / 60_000, rest % 60_000);
    [(d as u32, 1), (m as u32, 1), (s as u32, 1000)]
}

/// An IFD placed at `start` (offset in the TIFF structure): the entries, the next-IFD link (0)
/// and the values longer than 4 bytes after them. Its length does not depend on `start`.
fn ifd(entries: &[Entry], start: u32) -> Vec<u8> {
    let head = 2 + 12 * entries.len() as u32 + 4;
    let mut out = Vec::new();
    let mut data = Vec::new();
    out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for e in entries {
        out.extend_from_slice(&e.tag.to_be_bytes());
        out.extend_from_slice(&e.kind.to_be_bytes());
        out.extend_from_slice(&e.count.to_be_bytes());
        if e.value.len() <= 4 {
            let mut inline = e.value.clone();
            inline.resize(4, 0);
            out.extend_from_slice(&inline);
        } else {
            out.extend_from_slice(&(start + head + data.len() as u32).to_be_bytes());
            data.extend_from_slice(&e.value);
            if data.len() % 2 == 1 {
                data.push(0);
            }
        }
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&data);
    out
}

/// The APP1 segment (marker, length, `Exif\0\0`, TIFF) of `exif`.
fn app1(exif: &Exif) -> Vec<u8> {
    let offset = FixedOffset::east_opt(exif.utc_offset_s).unwrap_or_else(|| Utc.fix());
    let local = exif.taken_at.with_timezone(&offset);
    let sign = if exif.utc_offset_s < 0 { '-' } else { '+' };
    let abs = exif.utc_offset_s.unsigned_abs();
    let exif_entries = [
        ascii(0x9003, &local.format("%Y:%m:%d %H:%M:%S").to_string()),
        ascii(0x9011, &format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)),
    ];
    let utc = exif.taken_at;
    let gps_entries = [
        Entry { tag: 0x0000, kind: BYTE, count: 4, value: vec![2, 2, 0, 0] },
        ascii(0x0001, if exif.lat < 0.0 { "S" } else { "N" }),
        rationals(0x0002, &dms(exif.lat)),
        ascii(0x0003, if exif.lon < 0.0 { "W" } else { "E" }),
        rationals(0x0004, &dms(exif.lon)),
        rationals(0x0007, &[(utc.hour(), 1), (utc.minute(), 1), (utc.second(), 1)]),
        ascii(0x001d, &format!("{:04}:{:02}:{:02}", utc.year(), utc.month(), utc.day())),
    ];
    // IFD0 (two pointers) at 8, then the Exif IFD, then the GPS IFD.
    let ifd0_len = 2 + 12 * 2 + 4;
    let exif_at = 8 + ifd0_len;
    let exif_ifd = ifd(&exif_entries, exif_at);
    let gps_at = exif_at + exif_ifd.len() as u32;
    let gps_ifd = ifd(&gps_entries, gps_at);
    let ifd0 = ifd(&[long(0x8769, exif_at), long(0x8825, gps_at)], 8);

    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend_from_slice(&ifd0);
    tiff.extend_from_slice(&exif_ifd);
    tiff.extend_from_slice(&gps_ifd);
    let mut out = vec![0xff, 0xe1];
    let len = (2 + 6 + tiff.len()) as u16;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn exif() -> Exif {
        Exif {
            taken_at: Utc.with_ymd_and_hms(2026, 11, 18, 3, 4, 5).single().expect("valid"),
            utc_offset_s: 8 * 3600,
            lat: 39.984_702,
            lon: 116.318_417,
        }
    }

    #[test]
    fn the_server_reads_the_time_and_position_back() {
        let bytes = jpeg(7, &exif()).expect("encodes");
        let read = fieldvisit::imaging::read(&bytes, None, 10_000_000).expect("reads");
        assert_eq!(read.taken, Some(fieldvisit::imaging::ExifTime::Instant(exif().taken_at)));
        let (lat, lon) = read.position.expect("a GPS position");
        assert!((lat - 39.984_702).abs() < 1e-6 && (lon - 116.318_417).abs() < 1e-6, "{lat} {lon}");
    }

    #[test]
    fn same_picture_same_pixels_other_picture_other_pixels() {
        let a = pixels_jpeg(1).expect("encodes");
        assert_eq!(a, pixels_jpeg(1).expect("encodes"));
        assert_ne!(a, pixels_jpeg(2).expect("encodes"));
        assert_eq!(jpeg(1, &exif()).expect("encodes"), jpeg(1, &exif()).expect("encodes"));
    }
}
