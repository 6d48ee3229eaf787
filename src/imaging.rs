//! Reading an uploaded photo: its EXIF time and position, its size, a thumbnail and a perceptual
//! hash. CPU work on bytes in memory: call it off the async workers.
//!
//! JPEG and PNG are decoded in process (the `image` crate). HEIC (HEVC) has no Rust decoder and
//! the `libheif-rs` bindings need libheif 1.17 where Debian 12 ships 1.15, so a HEIC photo is
//! decoded by libheif's `heif-convert` in a child process ([`HeicDecoder`]), which also keeps a
//! crash of the C decoder on hostile input out of the server. Without the program a HEIC photo
//! keeps its EXIF (read from the HEIF container) but gets no thumbnail and no perceptual hash
//! (reuse is then found only for byte-identical files).

use crate::domain::photo::{PhotoFormat, hash_from_bytes};
use chrono::{DateTime, Datelike as _, NaiveDate, NaiveDateTime, Utc};
use exif::{In, Tag, Value};
use image::{DynamicImage, ImageReader, Limits};
use std::io::{Cursor, Read as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest side of a thumbnail, pixels.
pub const THUMBNAIL_PX: u32 = 320;
/// Largest width or height decoded (a 100 MP photo is about 12,000 px wide).
const MAX_SIDE_PX: u32 = 16_000;
/// Most memory a decoder may allocate.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;
/// Default pixel budget of a photo (`FV_PHOTO_MAX_PIXELS`): a 50 MP camera's full picture.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// EXIF time as the camera wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExifTime {
    /// With its UTC offset (`OffsetTimeOriginal`) or from the GPS clock (UTC): an instant.
    Instant(DateTime<Utc>),
    /// Local wall time without an offset: the org's time zone says which instant.
    Local(NaiveDateTime),
}

/// What an uploaded photo is.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPhoto {
    pub format: PhotoFormat,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// JPEG, at most [`THUMBNAIL_PX`] on its longest side.
    pub thumbnail: Option<Vec<u8>>,
    /// 64-bit gradient hash (dHash) of the picture.
    pub phash: Option<i64>,
    pub taken: Option<ExifTime>,
    /// EXIF GPS position (lat, lon).
    pub position: Option<(f64, f64)>,
}

/// Why an upload is not a usable photo.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    #[error("the file is not a JPEG, PNG or HEIC image")]
    NotAnImage,
    #[error("the {0} image could not be decoded: {1}")]
    Undecodable(&'static str, String),
    /// The header declares more pixels than the budget: refused before decoding.
    #[error("the {format} image is {width}x{height} px, more than the {max_pixels} pixels a photo may have")]
    TooLarge { format: &'static str, width: u32, height: u32, max_pixels: u64 },
}

/// Refuses a picture of `width` x `height` over the pixel budget (or wider than [`MAX_SIDE_PX`]).
fn within_budget(format: &'static str, (width, height): (u32, u32), max_pixels: u64) -> Result<(), ImagingError> {
    if u64::from(width) * u64::from(height) > max_pixels || width.max(height) > MAX_SIDE_PX {
        return Err(ImagingError::TooLarge { format, width, height, max_pixels });
    }
    Ok(())
}

/// Decodes HEIC photos with libheif's `heif-convert` (Debian `libheif-examples`) run as a child
/// process on temporary files; `--heic-decoder` names another program with the same arguments.
#[derive(Debug, Clone)]
pub struct HeicDecoder {
    program: PathBuf,
    timeout: Duration,
    /// `prlimit --as` of the child, bytes (0 = none).
    max_bytes: u64,
    /// `prlimit --cpu` of the child, seconds (0 = none).
    max_cpu_s: u64,
}

impl HeicDecoder {
    /// The decoder `program`, or none for an empty name or `none`.
    pub fn new(program: &str) -> Option<Self> {
        let program = program.trim();
        (!program.is_empty() && program != "none").then(|| Self {
            program: PathBuf::from(program),
            timeout: Duration::from_secs(30),
            max_bytes: 0,
            max_cpu_s: 0,
        })
    }

    /// The child limited to `max_bytes` of address space and `max_cpu_s` of CPU time (util-linux
    /// `prlimit`; 0 = no limit) and killed after `timeout_s` of wall-clock time.
    #[must_use]
    pub fn limited(mut self, max_bytes: u64, max_cpu_s: u64, timeout_s: u64) -> Self {
        self.max_bytes = max_bytes;
        self.max_cpu_s = max_cpu_s;
        self.timeout = Duration::from_secs(timeout_s.max(1));
        self
    }

    /// The command running the decoder on `input`, within its limits.
    fn command(&self, input: &std::path::Path, output: &std::path::Path) -> Command {
        let mut cmd = if self.max_bytes > 0 || self.max_cpu_s > 0 {
            let mut cmd = Command::new("prlimit");
            if self.max_bytes > 0 {
                cmd.arg(format!("--as={}", self.max_bytes));
            }
            if self.max_cpu_s > 0 {
                cmd.arg(format!("--cpu={}", self.max_cpu_s));
            }
            cmd.arg("--").arg(&self.program);
            cmd
        } else {
            Command::new(&self.program)
        };
        cmd.arg("--quiet").arg(input).arg(output);
        cmd
    }

    /// The picture as PNG bytes; `Ok(None)` when the program is not installed.
    fn to_png(&self, heic: &[u8]) -> Result<Option<Vec<u8>>, ImagingError> {
        let undecodable = |why: String| ImagingError::Undecodable("image/heic", why);
        let dir = tempfile::tempdir().map_err(|e| undecodable(format!("no temporary directory: {e}")))?;
        let (input, output) = (dir.path().join("photo.heic"), dir.path().join("photo.png"));
        std::fs::write(&input, heic).map_err(|e| undecodable(format!("writing a temporary file: {e}")))?;
        if !installed(&self.program) {
            warn_no_decoder(&self.program);
            return Ok(None);
        }
        let child =
            self.command(&input, &output).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The decoder is there (checked above): `prlimit` is not.
                warn_no_decoder(std::path::Path::new("prlimit"));
                return Ok(None);
            }
            Err(e) => return Err(undecodable(format!("starting {}: {e}", self.program.display()))),
        };
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(undecodable(format!("decoding took longer than {} s", self.timeout.as_secs())));
                }
                Err(e) => return Err(undecodable(format!("waiting for the decoder: {e}"))),
            }
        };
        if !status.success() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.by_ref().take(2048).read_to_string(&mut stderr);
            }
            let why = stderr.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("the decoder failed");
            return Err(undecodable(why.to_owned()));
        }
        std::fs::read(&output).map(Some).map_err(|e| undecodable(format!("the decoder wrote no picture: {e}")))
    }
}

/// Whether `program` (a path, or a name looked up in `PATH`) exists.
fn installed(program: &std::path::Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn warn_no_decoder(program: &std::path::Path) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(program = %program.display(), "no HEIC decoder installed: HEIC photos get no thumbnail");
    });
}

/// Reads a photo's bytes (format sniffed from them); HEIC pictures are decoded with `heic`. A
/// picture whose header declares more than `max_pixels` is refused before it is decoded.
pub fn read(bytes: &[u8], heic: Option<&HeicDecoder>, max_pixels: u64) -> Result<ReadPhoto, ImagingError> {
    let format = PhotoFormat::sniff(bytes).ok_or(ImagingError::NotAnImage)?;
    let (taken, position) = exif_facts(bytes);
    let mut photo = ReadPhoto { format, width: None, height: None, thumbnail: None, phash: None, taken, position };
    let name = format.content_type();
    let png;
    let (pixels, decode_as) = match format {
        PhotoFormat::Jpeg => (bytes, image::ImageFormat::Jpeg),
        PhotoFormat::Png => (bytes, image::ImageFormat::Png),
        PhotoFormat::Heic => match heic.map(|d| decode_heic(d, bytes, max_pixels)).transpose()?.flatten() {
            Some(decoded) => {
                png = decoded;
                (png.as_slice(), image::ImageFormat::Png)
            }
            None => return Ok(photo),
        },
    };
    // The header's size, before a byte of the picture is decoded.
    let size = ImageReader::with_format(Cursor::new(pixels), decode_as)
        .into_dimensions()
        .map_err(|e| ImagingError::Undecodable(name, e.to_string()))?;
    within_budget(name, size, max_pixels)?;
    let mut reader = ImageReader::with_format(Cursor::new(pixels), decode_as);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE_PX);
    limits.max_image_height = Some(MAX_SIDE_PX);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| ImagingError::Undecodable(name, e.to_string()))?;
    photo.width = Some(img.width());
    photo.height = Some(img.height());
    photo.phash = Some(perceptual_hash(&img));
    photo.thumbnail = Some(thumbnail(&img).map_err(|e| ImagingError::Undecodable(name, e.to_string()))?);
    Ok(photo)
}

/// A HEIC picture as PNG, refused before decoding when any image it declares (the picture, its
/// tiles, thumbnails, alpha or depth planes: every `ispe`) exceeds the pixel budget. A size the
/// boxes hide (or lie about) meets the child's own limits: `prlimit` memory and CPU time.
fn decode_heic(decoder: &HeicDecoder, bytes: &[u8], max_pixels: u64) -> Result<Option<Vec<u8>>, ImagingError> {
    for size in heif_image_sizes(bytes) {
        within_budget("image/heic", size, max_pixels)?;
    }
    decoder.to_png(bytes)
}

/// The sizes a HEIF file declares for its images (`meta/iprp/ipco/ispe` boxes, ISO/IEC 23008-12),
/// the whole picture's and its tiles'; none when the boxes are missing or malformed.
fn heif_image_sizes(bytes: &[u8]) -> Vec<(u32, u32)> {
    /// The (type, body) of each ISO BMFF box in `data`, up to the first malformed one.
    fn boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        while data.len() >= 8 {
            let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
            let kind = [data[4], data[5], data[6], data[7]];
            let (header, size) = match size {
                0 => (8, data.len()),
                1 if data.len() >= 16 => {
                    let large = u64::from_be_bytes(data[8..16].try_into().unwrap_or_default());
                    (16, usize::try_from(large).unwrap_or(usize::MAX))
                }
                _ => (8, size),
            };
            if size < header || size > data.len() {
                break;
            }
            out.push((kind, &data[header..size]));
            data = &data[size..];
        }
        out
    }
    fn child(data: &[u8], kind: [u8; 4]) -> Option<&[u8]> {
        boxes(data).into_iter().find(|(k, _)| *k == kind).map(|(_, body)| body)
    }
    let Some(ipco) = child(bytes, *b"meta")
        .and_then(|meta| meta.get(4..)) // a full box: version and flags first
        .and_then(|meta| child(meta, *b"iprp"))
        .and_then(|iprp| child(iprp, *b"ipco"))
    else {
        return Vec::new();
    };
    boxes(ipco)
        .into_iter()
        .filter(|(k, _)| k == b"ispe")
        .filter_map(|(_, body)| {
            let word = |at: usize| body.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
            Some((word(4)?, word(8)?))
        })
        .collect()
}

/// The gradient hash: 64 bits, robust to re-encoding and resizing.
pub fn perceptual_hash(img: &DynamicImage) -> i64 {
    let hasher =
        image_hasher::HasherConfig::new().hash_alg(image_hasher::HashAlg::Gradient).hash_size(8, 8).to_hasher();
    hash_from_bytes(hasher.hash_image(img).as_bytes()).unwrap_or_default()
}

fn thumbnail(img: &DynamicImage) -> Result<Vec<u8>, image::ImageError> {
    // `thumbnail` would enlarge a small picture.
    let small = if img.width().max(img.height()) > THUMBNAIL_PX {
        DynamicImage::ImageRgb8(img.thumbnail(THUMBNAIL_PX, THUMBNAIL_PX).to_rgb8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let mut out = Vec::new();
    small.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80))?;
    Ok(out)
}

/// EXIF time (`DateTimeOriginal` with `OffsetTimeOriginal`, else the GPS clock, else the bare
/// local time) and GPS position; what is missing or malformed is `None`.
fn exif_facts(bytes: &[u8]) -> (Option<ExifTime>, Option<(f64, f64)>) {
    let Ok(exif) = exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) else { return (None, None) };
    let ascii = |tag: Tag| match exif.get_field(tag, In::PRIMARY).map(|f| &f.value) {
        Some(Value::Ascii(v)) => v.first().cloned(),
        _ => None,
    };
    let rationals = |tag: Tag| match exif.get_field(tag, In::PRIMARY).map(|f| &f.value) {
        Some(Value::Rational(v)) => Some(v.iter().map(exif::Rational::to_f64).collect::<Vec<f64>>()),
        _ => None,
    };
    let original =
        ascii(Tag::DateTimeOriginal).and_then(|a| {
            let mut dt = exif::DateTime::from_ascii(&a).ok()?;
            if let Some(offset) = ascii(Tag::OffsetTimeOriginal) {
                let _ = dt.parse_offset(&offset);
            }
            let local = NaiveDate::from_ymd_opt(i32::from(dt.year), u32::from(dt.month), u32::from(dt.day))?
                .and_hms_opt(u32::from(dt.hour), u32::from(dt.minute), u32::from(dt.second))?;
            Some((local, dt.offset))
        });
    let gps_time = (|| {
        let date = ascii(Tag::GPSDateStamp)?;
        let date = NaiveDate::parse_from_str(std::str::from_utf8(&date).ok()?.trim(), "%Y:%m:%d").ok()?;
        // EXIF writes four-digit years; `%Y` also takes `-262143` or `+262142`: an instant
        // PostgreSQL cannot store (before 4713 BC) refused the whole photo, and one at chrono's
        // last day leaves no room for a time zone.
        if !(0..=9999).contains(&date.year()) {
            return None;
        }
        let hms = rationals(Tag::GPSTimeStamp)?;
        let secs = hms.first()? * 3600.0 + hms.get(1)? * 60.0 + hms.get(2)?;
        if !(0.0..86_400.0).contains(&secs) {
            return None;
        }
        // `secs` is finite and below a day: the milliseconds fit, the sum is checked all the same.
        let time_of_day = chrono::TimeDelta::try_milliseconds((secs * 1000.0) as i64)?;
        date.and_hms_opt(0, 0, 0)?.and_utc().checked_add_signed(time_of_day)
    })();
    let taken = match (original, gps_time) {
        (Some((local, Some(offset))), _) => {
            Some(ExifTime::Instant((local - chrono::Duration::minutes(i64::from(offset))).and_utc()))
        }
        (_, Some(utc)) => Some(ExifTime::Instant(utc)),
        (Some((local, None)), None) => Some(ExifTime::Local(local)),
        (None, None) => None,
    };
    let coordinate = |value: Tag, reference: Tag, negative: u8| {
        let v = rationals(value)?;
        let degrees = v.first()? + v.get(1).unwrap_or(&0.0) / 60.0 + v.get(2).unwrap_or(&0.0) / 3600.0;
        let sign = if ascii(reference)?.first() == Some(&negative) { -1.0 } else { 1.0 };
        Some(sign * degrees).filter(|d| d.is_finite())
    };
    let position = coordinate(Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S')
        .zip(coordinate(Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W'))
        .filter(|(lat, lon)| {
            (-90.0..=90.0).contains(lat) && (-180.0..=180.0).contains(lon) && (*lat, *lon) != (0.0, 0.0)
        });
    (taken, position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_heic_decoder_a_heic_photo_is_kept_undecoded() {
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
        assert!(HeicDecoder::new("none").is_none() && HeicDecoder::new(" ").is_none());
        for decoder in [None, HeicDecoder::new("/nonexistent/heif-convert")] {
            let photo = read(&heic, decoder.as_ref(), DEFAULT_MAX_PIXELS).expect("kept");
            assert_eq!((photo.format, photo.thumbnail, photo.phash), (PhotoFormat::Heic, None, None));
        }
    }

    /// An ISO BMFF box of `kind` around `body`.
    fn bmff(kind: [u8; 4], body: &[u8]) -> Vec<u8> {
        let size = u32::try_from(body.len() + 8).expect("small");
        [&size.to_be_bytes()[..], &kind, body].concat()
    }

    #[test]
    fn a_heic_too_large_is_refused_before_it_is_decoded() {
        let ispe = |w: u32, h: u32| bmff(*b"ispe", &[&[0; 4][..], &w.to_be_bytes(), &h.to_be_bytes()].concat());
        let file = |sizes: &[(u32, u32)]| {
            let ipco = bmff(*b"ipco", &sizes.iter().flat_map(|&(w, h)| ispe(w, h)).collect::<Vec<u8>>());
            let meta = bmff(*b"meta", &[&[0; 4][..], &bmff(*b"hdlr", &[0; 24]), &bmff(*b"iprp", &ipco)].concat());
            [bmff(*b"ftyp", b"heic\0\0\0\0mif1heic"), meta].concat()
        };
        let tiled = file(&[(4032, 3024), (512, 512)]);
        assert_eq!(heif_image_sizes(&tiled), [(4032, 3024), (512, 512)]);
        assert_eq!(heif_image_sizes(&tiled[..tiled.len() - 3]), [], "a truncated box is not read");
        let decoder = HeicDecoder::new("/nonexistent/heif-convert");
        for too_large in [file(&[(512, 512), (16_001, 10)]), file(&[(15_000, 15_000)])] {
            let refused = read(&too_large, decoder.as_ref(), DEFAULT_MAX_PIXELS);
            assert!(matches!(refused, Err(ImagingError::TooLarge { format: "image/heic", .. })), "{refused:?}");
        }
        let fits = read(&tiled, decoder.as_ref(), DEFAULT_MAX_PIXELS).expect("no decoder: kept undecoded");
        assert_eq!(fits.phash, None);
    }

    fn jpeg(seed: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(64, 48, |x, y| {
            let v = ((x * 7 + y * 13 + seed * 31) % 256) as u8;
            image::Rgb([v, v.wrapping_mul(3), 255 - v])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90))
            .expect("encode");
        out
    }

    #[test]
    fn a_jpeg_without_exif_reads_with_size_thumbnail_and_hash() {
        let p = read(&jpeg(1), None, DEFAULT_MAX_PIXELS).expect("reads");
        assert_eq!(
            (p.format, p.width, p.height, p.taken, p.position),
            (PhotoFormat::Jpeg, Some(64), Some(48), None, None)
        );
        let thumb = read(p.thumbnail.as_deref().expect("thumbnail"), None, DEFAULT_MAX_PIXELS)
            .expect("the thumbnail is a JPEG");
        assert_eq!((thumb.width, thumb.height), (Some(64), Some(48)), "never enlarged");
        assert!(p.phash.is_some());
    }

    #[test]
    fn not_an_image_or_a_broken_one_is_refused() {
        assert!(matches!(read(b"hello, I am a text file", None, DEFAULT_MAX_PIXELS), Err(ImagingError::NotAnImage)));
        let mut broken = jpeg(2);
        broken.truncate(40);
        assert!(matches!(read(&broken, None, DEFAULT_MAX_PIXELS), Err(ImagingError::Undecodable("image/jpeg", _))));
    }
}
