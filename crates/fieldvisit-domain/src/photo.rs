//! Photo evidence: what an uploaded picture is (sniffed from its bytes, never from its name), and
//! what it says about a visit: taken at the outlet or far from it, during the visit or at another
//! time, or the same picture as one already given for another visit or outlet.
//!
//! Definitions (rule version `visits-v4`, with [`PhotoRules::default`]):
//! - At the outlet: the photo's position is within the outlet's radius plus
//!   [`PhotoRules::at_outlet_margin_m`] of it; far: beyond [`PhotoRules::far_m`]. An EXIF
//!   position (it has no accuracy) is always judged so; the app's claimed position only when its
//!   fix is accurate to at most [`PhotoRules::claim_max_accuracy_m`] ([`position_is_judged`]):
//!   a claim less accurate, or of unknown accuracy, leaves the position unverifiable (not at the
//!   outlet; its distance is still told), unless its whole accuracy circle lies beyond
//!   [`PhotoRules::far_m`]: then it is far.
//! - During the visit: the EXIF time is within [`PhotoRules::time_tolerance_s`] of
//!   `[arrival, departure]`; off time: outside it.
//! - Reused: its perceptual hash is within [`PhotoRules::reuse_max_bits`] bits of a photo uploaded
//!   before for another visit or outlet (or its bytes are the same).
//! - A photo *confirms* the visit when at the outlet, during the visit and not reused; it
//!   *contradicts* it when far, off time or reused; otherwise (no position or time) it is
//!   *unverifiable*.
//! - Time and position come from the EXIF when the file has them, else from the app's own
//!   [`Capture`] claim (browsers may strip GPS from camera EXIF, so the reps' app sends its fix
//!   and clock at capture with each photo); [`Findings::time_source`] and
//!   [`Findings::position_source`] say which was used. A photo without a claim is judged by its
//!   EXIF alone, as before claims existed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::geo::haversine_m;
use super::validation::FieldError;

/// The image formats accepted, told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoFormat {
    Jpeg,
    Png,
    Heic,
}

impl PhotoFormat {
    /// The format of `bytes`, from its signature; `None` for anything else.
    pub fn sniff(bytes: &[u8]) -> Option<PhotoFormat> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Some(PhotoFormat::Jpeg);
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(PhotoFormat::Png);
        }
        // ISO BMFF: a box size, `ftyp`, then the major brand.
        if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
            const BRANDS: [&[u8; 4]; 8] = [b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"];
            if BRANDS.iter().any(|b| &bytes[8..12] == *b) {
                return Some(PhotoFormat::Heic);
            }
        }
        None
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "image/jpeg",
            PhotoFormat::Png => "image/png",
            PhotoFormat::Heic => "image/heic",
        }
    }

    pub fn from_content_type(s: &str) -> Option<PhotoFormat> {
        [PhotoFormat::Jpeg, PhotoFormat::Png, PhotoFormat::Heic].into_iter().find(|f| f.content_type() == s)
    }
}

/// Thresholds of photo findings; [`Default`] holds the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoRules {
    /// Metres beyond the outlet's radius that still count as at the outlet (EXIF GPS is rough
    /// indoors). Default 100.
    pub at_outlet_margin_m: f64,
    /// Beyond this many metres from the outlet a photo contradicts the visit. Default 500.
    pub far_m: f64,
    /// Seconds before arrival or after departure still counted as during the visit. Default 900.
    pub time_tolerance_s: i64,
    /// Perceptual hashes at most this many bits apart are the same picture. Default 6 (of 64).
    pub reuse_max_bits: u32,
    /// The app's claimed position is judged only when its fix is accurate to at most this many
    /// metres (a claim within the outlet's radius + margin but less accurate proves nothing).
    /// Default 100.
    pub claim_max_accuracy_m: f64,
}

impl Default for PhotoRules {
    fn default() -> Self {
        PhotoRules {
            at_outlet_margin_m: 100.0,
            far_m: 500.0,
            time_tolerance_s: 900,
            reuse_max_bits: 6,
            claim_max_accuracy_m: 100.0,
        }
    }
}

/// What a photo says about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhotoFacts {
    /// EXIF time.
    pub taken_at: Option<DateTime<Utc>>,
    /// EXIF position (lat, lon).
    pub position: Option<(f64, f64)>,
    /// An earlier photo of another visit or outlet it is the same picture as.
    pub reused_photo_id: Option<i64>,
    /// The app's own claim of when and where it took the photo, kept apart from the EXIF.
    pub capture: Option<Capture>,
}

/// The reps' app's claim of when and where a photo was taken: its clock and its own fix at
/// capture, sent with the photo (camera EXIF may lack them: browsers strip GPS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Capture {
    /// When the app took it.
    pub at: Option<DateTime<Utc>>,
    /// The app's fix at capture.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Accuracy of that fix, metres.
    pub accuracy_m: Option<f32>,
}

impl Capture {
    /// The claim from its parts, checked: latitude and longitude both or neither and in range,
    /// accuracy above 0; each wrong field named. `None` when nothing was claimed.
    pub fn new(
        at: Option<DateTime<Utc>>,
        lat: Option<f64>,
        lon: Option<f64>,
        accuracy_m: Option<f32>,
    ) -> Result<Option<Capture>, Vec<FieldError>> {
        let mut errors = Vec::new();
        match (lat, lon) {
            (Some(_), None) => errors.push(FieldError::new("lon", "is required with lat (both or neither)")),
            (None, Some(_)) => errors.push(FieldError::new("lat", "is required with lon (both or neither)")),
            _ => {}
        }
        if lat.is_some_and(|v| !v.is_finite() || !(-90.0..=90.0).contains(&v)) {
            errors.push(FieldError::new("lat", "must be a number between -90 and 90"));
        }
        if lon.is_some_and(|v| !v.is_finite() || !(-180.0..=180.0).contains(&v)) {
            errors.push(FieldError::new("lon", "must be a number between -180 and 180"));
        }
        if accuracy_m.is_some_and(|a| !(a.is_finite() && a > 0.0)) {
            errors.push(FieldError::new("accuracy_m", "must be a number greater than 0"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let claim = Capture { at, lat, lon, accuracy_m };
        Ok(Some(claim).filter(|c| *c != Capture::default()))
    }

    /// The claimed position (lat, lon).
    pub fn position(&self) -> Option<(f64, f64)> {
        self.lat.zip(self.lon)
    }
}

/// Where a photo's time or position was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FactSource {
    /// The file's EXIF.
    Exif,
    /// The app's capture claim.
    App,
}

impl PhotoFacts {
    /// The time the rules judge: the EXIF time, else the app's capture time; with its source.
    pub fn time(&self) -> Option<(DateTime<Utc>, FactSource)> {
        let app = self.capture.and_then(|c| c.at).map(|t| (t, FactSource::App));
        self.taken_at.map(|t| (t, FactSource::Exif)).or(app)
    }

    /// The position the rules judge: the EXIF position, else the app's capture fix; with its
    /// source.
    pub fn place(&self) -> Option<((f64, f64), FactSource)> {
        let app = self.capture.and_then(|c| c.position()).map(|p| (p, FactSource::App));
        self.position.map(|p| (p, FactSource::Exif)).or(app)
    }
}

/// What a photo shows about its visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PhotoVerdict {
    Confirms,
    Contradicts,
    Unverifiable,
}

/// A photo against its outlet and visit (module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Findings {
    /// Metres from the photo's position (see `position_source`) to the outlet.
    pub distance_m: Option<f64>,
    /// Whether the position is at the outlet; `None` without a position, or when the position is
    /// the app's claim and its fix is not accurate enough to judge ([`position_is_judged`]).
    pub at_outlet: Option<bool>,
    /// The position is judged and farther than [`PhotoRules::far_m`] from the outlet, or it is an
    /// inaccurate claim whose accuracy circle lies wholly beyond that.
    pub far: bool,
    /// Minutes from the photo's time (see `time_source`) to the visit's `[arrival, departure]`
    /// (0 inside it); `None` without a time or without a visit.
    pub minutes_from_visit: Option<i64>,
    pub during_visit: Option<bool>,
    pub reused_photo_id: Option<i64>,
    pub verdict: PhotoVerdict,
    /// Where the time judged came from: `exif`, `app` (the capture claim), or `null` (none).
    #[serde(default)]
    pub time_source: Option<FactSource>,
    /// Where the position judged came from: `exif`, `app` (the capture claim), or `null` (none).
    #[serde(default)]
    pub position_source: Option<FactSource>,
}

/// Geofence radius a photo is judged with when neither its outlet nor the outlet's tier policy
/// gives one (metres).
pub const FALLBACK_RADIUS_M: f64 = 50.0;

/// The outlet a photo is of: its position and radius.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutletPlace {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
}

/// Whether a photo's position read from `source` is judged against the outlet (at the outlet, far;
/// module documentation), `accuracy_m` being the accuracy of the app's fix: an EXIF position
/// always (EXIF has no accuracy: judged by distance alone, as before claims existed); the app's
/// claim only when its accuracy is known and at most [`PhotoRules::claim_max_accuracy_m`].
pub fn position_is_judged(source: FactSource, accuracy_m: Option<f32>, rules: &PhotoRules) -> bool {
    match source {
        FactSource::Exif => true,
        FactSource::App => accuracy_m.is_some_and(|a| f64::from(a) <= rules.claim_max_accuracy_m),
    }
}

/// A photo's findings against its outlet and, when it was taken for one, its visit.
pub fn findings(
    facts: &PhotoFacts,
    outlet: OutletPlace,
    visit: Option<(DateTime<Utc>, DateTime<Utc>)>,
    rules: &PhotoRules,
) -> Findings {
    let time = facts.time();
    let place = facts.place();
    let taken_at = time.map(|(t, _)| t);
    let distance_m = place.map(|((lat, lon), _)| haversine_m(lat, lon, outlet.lat, outlet.lon));
    let claimed_accuracy = facts.capture.and_then(|c| c.accuracy_m);
    let judged = place.is_some_and(|(_, source)| position_is_judged(source, claimed_accuracy, rules));
    let judged_distance = distance_m.filter(|_| judged);
    let at_outlet = judged_distance.map(|d| d <= outlet.radius_m + rules.at_outlet_margin_m);
    // Far: a judged position beyond `far_m`, or a claim too inaccurate to place the photo at the
    // outlet whose whole accuracy circle still lies beyond `far_m` (a fix 2 km off at ±150 m).
    let far = judged_distance.is_some_and(|d| d > rules.far_m)
        || match (place, distance_m, claimed_accuracy) {
            (Some((_, FactSource::App)), Some(d), Some(a)) => d - f64::from(a) > rules.far_m,
            _ => false,
        };
    let minutes_from_visit = match (taken_at, visit) {
        (Some(t), Some((arrival, departure))) => {
            let outside_s = if t < arrival {
                (arrival - t).num_seconds()
            } else if t > departure {
                (t - departure).num_seconds()
            } else {
                0
            };
            Some(outside_s.div_euclid(60))
        }
        _ => None,
    };
    let during_visit = match (taken_at, visit) {
        (Some(t), Some((arrival, departure))) => Some(
            t >= arrival - chrono::Duration::seconds(rules.time_tolerance_s)
                && t <= departure + chrono::Duration::seconds(rules.time_tolerance_s),
        ),
        _ => None,
    };
    let verdict = if far || during_visit == Some(false) || facts.reused_photo_id.is_some() {
        PhotoVerdict::Contradicts
    } else if at_outlet == Some(true) && (visit.is_none() || during_visit == Some(true)) {
        PhotoVerdict::Confirms
    } else {
        PhotoVerdict::Unverifiable
    };
    Findings {
        distance_m,
        at_outlet,
        far,
        minutes_from_visit,
        during_visit,
        reused_photo_id: facts.reused_photo_id,
        verdict,
        time_source: time.map(|(_, s)| s),
        position_source: place.map(|(_, s)| s),
    }
}

/// Bits that differ between two 64-bit perceptual hashes.
pub fn hash_distance(a: i64, b: i64) -> u32 {
    (a ^ b).count_ones()
}

/// A 64-bit perceptual hash from the 8 bytes an image hasher gives (big-endian).
pub fn hash_from_bytes(bytes: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = bytes.try_into().ok()?;
    Some(i64::from_be_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).single().expect("valid time")
    }

    const OUTLET: OutletPlace = OutletPlace { lat: 39.9, lon: 116.4, radius_m: 50.0 };

    fn facts(north_m: f64, at: DateTime<Utc>) -> PhotoFacts {
        PhotoFacts {
            taken_at: Some(at),
            position: Some((39.9 + north_m / 111_195.0, 116.4)),
            reused_photo_id: None,
            capture: None,
        }
    }

    fn claim(north_m: f64, at: DateTime<Utc>) -> Capture {
        Capture { at: Some(at), lat: Some(39.9 + north_m / 111_195.0), lon: Some(116.4), accuracy_m: Some(12.0) }
    }

    #[test]
    fn formats_are_told_by_their_bytes() {
        assert_eq!(PhotoFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE1, 0, 0]), Some(PhotoFormat::Jpeg));
        assert_eq!(PhotoFormat::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(PhotoFormat::Png));
        assert_eq!(PhotoFormat::sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Some(PhotoFormat::Heic));
        assert_eq!(PhotoFormat::sniff(b"\0\0\0\x18ftypisom\0\0\0\0"), None, "an MP4 is not a photo");
        assert_eq!(PhotoFormat::sniff(b"GIF89a"), None);
        assert_eq!(PhotoFormat::sniff(b"%PDF-1.7"), None);
        assert_eq!(PhotoFormat::sniff(b""), None);
    }

    #[test]
    fn a_photo_at_the_outlet_during_the_visit_confirms_it() {
        let f = findings(&facts(40.0, t(10, 5)), OUTLET, Some((t(10, 0), t(10, 20))), &PhotoRules::default());
        assert_eq!(
            (f.at_outlet, f.during_visit, f.minutes_from_visit, f.far),
            (Some(true), Some(true), Some(0), false)
        );
        assert_eq!(f.verdict, PhotoVerdict::Confirms);
        // A little before arrival is still during it (the rep photographs the storefront first).
        let f = findings(&facts(40.0, t(9, 50)), OUTLET, Some((t(10, 0), t(10, 20))), &PhotoRules::default());
        assert_eq!((f.during_visit, f.minutes_from_visit, f.verdict), (Some(true), Some(10), PhotoVerdict::Confirms));
    }

    #[test]
    fn far_off_time_or_reused_photos_contradict_the_visit() {
        let visit = Some((t(10, 0), t(10, 20)));
        let rules = PhotoRules::default();
        let far = findings(&facts(2000.0, t(10, 5)), OUTLET, visit, &rules);
        assert!(far.far && far.at_outlet == Some(false), "{far:?}");
        assert_eq!(far.verdict, PhotoVerdict::Contradicts);
        let day_before = facts(10.0, t(10, 5) - chrono::Duration::days(1));
        let early = findings(&day_before, OUTLET, visit, &rules);
        assert_eq!((early.during_visit, early.minutes_from_visit), (Some(false), Some(24 * 60 - 5)));
        assert_eq!(early.verdict, PhotoVerdict::Contradicts);
        let reused = PhotoFacts { reused_photo_id: Some(7), ..facts(10.0, t(10, 5)) };
        assert_eq!(findings(&reused, OUTLET, visit, &rules).verdict, PhotoVerdict::Contradicts);
        // 300 m: not at the outlet, not far either.
        let between = findings(&facts(300.0, t(10, 5)), OUTLET, visit, &rules);
        assert_eq!(between.verdict, PhotoVerdict::Unverifiable);
        let bare = findings(&PhotoFacts::default(), OUTLET, visit, &rules);
        assert_eq!((bare.distance_m, bare.during_visit, bare.verdict), (None, None, PhotoVerdict::Unverifiable));
    }

    #[test]
    fn the_exif_is_used_when_present_else_the_apps_capture() {
        let visit = Some((t(10, 0), t(10, 20)));
        let rules = PhotoRules::default();
        // No EXIF (a browser stripped it): the app's claim at the outlet during the visit confirms.
        let stripped = PhotoFacts { capture: Some(claim(20.0, t(10, 5))), ..PhotoFacts::default() };
        let f = findings(&stripped, OUTLET, visit, &rules);
        assert_eq!((f.time_source, f.position_source), (Some(FactSource::App), Some(FactSource::App)));
        assert_eq!((f.at_outlet, f.during_visit, f.verdict), (Some(true), Some(true), PhotoVerdict::Confirms));
        // EXIF present: it is judged, whatever the claim says (here: 2 km away, a day later).
        let claimed_elsewhere =
            PhotoFacts { capture: Some(claim(2000.0, t(10, 5) + chrono::Duration::days(1))), ..facts(40.0, t(10, 5)) };
        let f = findings(&claimed_elsewhere, OUTLET, visit, &rules);
        assert_eq!((f.time_source, f.position_source), (Some(FactSource::Exif), Some(FactSource::Exif)));
        assert_eq!(f, findings(&facts(40.0, t(10, 5)), OUTLET, visit, &rules));
        assert_eq!(f.verdict, PhotoVerdict::Confirms);
        // Each fact on its own: EXIF time without GPS takes the app's position.
        let mixed = PhotoFacts { position: None, capture: Some(claim(2000.0, t(9, 0))), ..facts(0.0, t(10, 5)) };
        let f = findings(&mixed, OUTLET, visit, &rules);
        assert_eq!((f.time_source, f.position_source), (Some(FactSource::Exif), Some(FactSource::App)));
        assert_eq!((f.during_visit, f.far, f.verdict), (Some(true), true, PhotoVerdict::Contradicts));
        // Neither: no source, unverifiable; an empty claim is no claim.
        let f = findings(&PhotoFacts::default(), OUTLET, visit, &rules);
        assert_eq!((f.time_source, f.position_source, f.verdict), (None, None, PhotoVerdict::Unverifiable));
        assert_eq!(Capture::new(None, None, None, None), Ok(None));
    }

    #[test]
    fn a_claim_places_the_photo_only_when_its_fix_is_accurate_enough() {
        let visit = Some((t(10, 0), t(10, 20)));
        let rules = PhotoRules::default();
        let claimed = |north_m: f64, accuracy_m: Option<f32>| PhotoFacts {
            capture: Some(Capture { accuracy_m, ..claim(north_m, t(10, 5)) }),
            ..PhotoFacts::default()
        };
        // Within radius + 100 m and accurate to at most 100 m: at the outlet, confirming.
        for accuracy in [12.0, 100.0] {
            let f = findings(&claimed(140.0, Some(accuracy)), OUTLET, visit, &rules);
            assert_eq!((f.at_outlet, f.verdict), (Some(true), PhotoVerdict::Confirms), "±{accuracy} m: {f:?}");
        }
        // Less accurate, or of unknown accuracy: the position is unverifiable, neither at the
        // outlet nor far (the distance is still told), and the photo does not confirm.
        for (north_m, accuracy) in
            [(20.0, Some(100.5)), (20.0, Some(800.0)), (20.0, None), (2000.0, None), (700.0, Some(250.0))]
        {
            let f = findings(&claimed(north_m, accuracy), OUTLET, visit, &rules);
            assert_eq!((f.at_outlet, f.far, f.position_source), (None, false, Some(FactSource::App)), "{f:?}");
            assert!(f.distance_m.is_some_and(|d| (d - north_m).abs() < 1.0), "{f:?}");
            assert_eq!(f.verdict, PhotoVerdict::Unverifiable, "{north_m} m ±{accuracy:?}: {f:?}");
            assert!(!position_is_judged(FactSource::App, accuracy, &rules));
        }
        // Too inaccurate to place at the outlet, yet wholly beyond 500 m: far, contradicting.
        let f = findings(&claimed(2000.0, Some(150.0)), OUTLET, visit, &rules);
        assert_eq!((f.at_outlet, f.far, f.verdict), (None, true, PhotoVerdict::Contradicts), "{f:?}");
        // An inaccurate claim taken off time still contradicts (the time is judged on its own).
        let late = PhotoFacts {
            capture: Some(Capture { at: Some(t(12, 0)), accuracy_m: Some(800.0), ..claim(20.0, t(10, 5)) }),
            ..PhotoFacts::default()
        };
        assert_eq!(findings(&late, OUTLET, visit, &rules).verdict, PhotoVerdict::Contradicts);
        // EXIF has no accuracy: judged by distance alone, as before; the claim's accuracy does
        // not touch it.
        let exif = PhotoFacts {
            capture: Some(Capture { accuracy_m: Some(800.0), ..claim(20.0, t(10, 5)) }),
            ..facts(140.0, t(10, 5))
        };
        let f = findings(&exif, OUTLET, visit, &rules);
        assert_eq!(
            (f.position_source, f.at_outlet, f.verdict),
            (Some(FactSource::Exif), Some(true), PhotoVerdict::Confirms)
        );
        assert!(position_is_judged(FactSource::Exif, None, &rules));
    }

    #[test]
    fn a_photo_without_a_claim_is_judged_as_before_claims_existed() {
        let visit = Some((t(10, 0), t(10, 20)));
        let rules = PhotoRules::default();
        for f in [facts(40.0, t(10, 5)), facts(2000.0, t(9, 0)), PhotoFacts::default()] {
            let old = findings(&f, OUTLET, visit, &rules);
            // What was stored before the sources existed reads back the same.
            let mut stored = serde_json::to_value(&old).expect("json");
            let map = stored.as_object_mut().expect("object");
            map.remove("time_source");
            map.remove("position_source");
            let read: Findings = serde_json::from_value(stored).expect("old findings read");
            assert_eq!(
                (read.distance_m, read.during_visit, read.verdict),
                (old.distance_m, old.during_visit, old.verdict)
            );
            let expect_source = f.taken_at.map(|_| FactSource::Exif);
            assert_eq!((old.time_source, old.position_source), (expect_source, expect_source));
        }
    }

    #[test]
    fn a_capture_claim_is_checked_field_by_field() {
        let fields = |r: Result<Option<Capture>, Vec<FieldError>>| {
            r.err().unwrap_or_default().into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert_eq!(fields(Capture::new(None, Some(91.0), Some(116.0), None)), ["lat"]);
        assert_eq!(fields(Capture::new(None, Some(39.0), None, None)), ["lon"]);
        assert_eq!(fields(Capture::new(None, None, Some(116.0), Some(0.0))), ["lat", "accuracy_m"]);
        assert_eq!(fields(Capture::new(None, Some(39.0), Some(f64::NAN), None)), ["lon"]);
        let ok = Capture::new(Some(t(10, 0)), Some(39.9), Some(116.4), Some(8.0)).expect("valid");
        assert_eq!(ok.and_then(|c| c.position()), Some((39.9, 116.4)));
    }

    #[test]
    fn hashes_compare_by_differing_bits() {
        assert_eq!(hash_distance(0, 0), 0);
        assert_eq!(hash_distance(0b1011, 0b0001), 2);
        assert_eq!(hash_distance(-1, 0), 64);
        assert_eq!(hash_from_bytes(&[0, 0, 0, 0, 0, 0, 1, 2]), Some(258));
        assert_eq!(hash_from_bytes(&[1, 2]), None);
    }
}
