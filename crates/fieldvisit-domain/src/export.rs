//! Audit exports: what is asked for, the metric definitions every export carries, the manifest
//! that makes an export reproducible and tamper-evident, and the digest of the rows it was made
//! from (so that `verify` can tell a changed file from changed data).

use crate::compliance::{Review, ReviewDecision};
use crate::validation::FieldError;
use crate::visit::Verdict;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the metric definitions below; bumped whenever one changes meaning.
pub const METRICS_VERSION: &str = "metrics-2";

/// Version of the manifest layout.
pub const MANIFEST_VERSION: u32 = 1;

/// Longest period one export covers (local days).
pub const MAX_PERIOD_DAYS: i64 = 366;

/// The metric definitions (name, definition) shipped in every export's definitions sheet.
pub const METRIC_DEFINITIONS: &[(&str, &str)] = &[
    ("U", "Active outlets in scope at the start of the period."),
    (
        "V",
        "Valid visits in the period: verified visits, plus visits a reviewer accepted, minus visits a reviewer rejected.",
    ),
    ("P", "Planned visits of the period."),
    (
        "plan compliance %",
        "Planned visits matched by a valid visit on their day and inside their time window / P x 100.",
    ),
    (
        "done / late / short / missed",
        "A planned visit is done (valid visit in its window), late (valid visit on its day outside the window), short (a visit too short for its tier) or missed.",
    ),
    ("unplanned visits", "Visits of a rep-day that answered no planned visit."),
    ("outlet coverage %", "Distinct outlets in V / |U| x 100."),
    (
        "frequency compliance %",
        "Mean over the outlets of U of min(valid visits / required visits of its tier for the period, 1) x 100.",
    ),
    ("dwell compliance %", "Visits in V with dwell at least the tier's minimum / |V| x 100."),
    ("verified rate %", "Verified visits / all detected visits x 100; suspect rate likewise with suspect visits."),
    ("time in market", "Last departure - first arrival of a rep-day."),
    ("in-store time", "Sum of the dwell of a rep-day's visits."),
    ("travel time", "Time in market - in-store time."),
    (
        "distance travelled",
        "Along the rep-day's usable fixes (known accuracy within the limit, no speed jumps); gaps over the limit are not bridged.",
    ),
    (
        "verdict",
        "verified (enough good fixes near the outlet for long enough), short (too short a dwell), unverified (poor accuracy or inferred across a gap), suspect (spoofing signals).",
    ),
    (
        "risk score",
        "0 (no spoofing signal) to 1 (strong signals): mock fixes, speed jumps, teleports, constant position or accuracy, clock ahead; photos taken far from the outlet, at another time, or reused add to it, one confirming the visit takes some off.",
    ),
    (
        "photo verdict",
        "confirms (EXIF position within the outlet's radius + 100 m, EXIF time within 15 minutes of the visit, not reused), contradicts (over 500 m away, taken at another time, or the same picture as one given for another visit or outlet), unverifiable (no EXIF position or time).",
    ),
    (
        "checklist problems",
        "Answers outside what the checklist version expects (a display not OK, stock below its minimum, a competitor present).",
    ),
];

/// Whose figures an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ExportScope {
    /// A territory and every territory under it (its team of reps).
    Territory { id: i64 },
    /// One rep.
    Rep { id: i64 },
}

/// Where an export job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    /// Waiting for a free slot.
    Queued,
    Running,
    /// Its files and manifest are stored.
    Done,
    /// It stopped with an error (or its server stopped); to be requested again.
    Failed,
}

named!(ExportStatus, "export status", {
    Queued => "queued",
    Running => "running",
    Done => "done",
    Failed => "failed",
});

/// The file formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One workbook, one sheet per table.
    Xlsx,
    /// One CSV file per table, zipped.
    Csv,
    /// The visits as points and the day tracks as lines (RFC 7946).
    Geojson,
    /// A summary, one page per rep: figures, a chart, the worst findings.
    Pdf,
}

impl ExportFormat {
    /// Every format, in file order.
    pub const ALL: [ExportFormat; 4] =
        [ExportFormat::Xlsx, ExportFormat::Csv, ExportFormat::Geojson, ExportFormat::Pdf];

    /// The format whose file is `name`.
    pub fn of_file(name: &str) -> Option<ExportFormat> {
        ExportFormat::ALL.into_iter().find(|f| f.file_name() == name)
    }

    /// The file the format is written to.
    pub fn file_name(self) -> &'static str {
        match self {
            ExportFormat::Xlsx => "audit.xlsx",
            ExportFormat::Csv => "audit-csv.zip",
            ExportFormat::Geojson => "audit.geojson",
            ExportFormat::Pdf => "audit-summary.pdf",
        }
    }

    /// The media type the file is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ExportFormat::Csv => "application/zip",
            ExportFormat::Geojson => "application/geo+json",
            ExportFormat::Pdf => "application/pdf",
        }
    }
}

/// What an export is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportParams {
    pub scope: ExportScope,
    /// First local day (YYYY-MM-DD).
    pub from: NaiveDate,
    /// Last local day (inclusive).
    pub to: NaiveDate,
    /// Default: all formats; each at most once (a rule of the description).
    #[serde(default = "all_formats")]
    #[schema(min_items = 1)]
    pub formats: Vec<ExportFormat>,
}

fn all_formats() -> Vec<ExportFormat> {
    ExportFormat::ALL.to_vec()
}

impl ExportParams {
    /// Every problem with the request, by field.
    pub fn problems(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (field, d) in [("from", self.from), ("to", self.to)] {
            if !crate::plan::date_in_range(d) {
                errors.push(FieldError::new(field, "must be a date from 2000-01-01 to 2100-12-31"));
            }
        }
        let dated = errors.is_empty();
        if dated && self.to < self.from {
            errors.push(FieldError::new("to", "must be on or after `from`"));
        } else if dated && (self.to - self.from).num_days() + 1 > MAX_PERIOD_DAYS {
            errors.push(FieldError::new("to", format!("the period is longer than {MAX_PERIOD_DAYS} days")));
        }
        if self.formats.is_empty() {
            errors.push(FieldError::new("formats", "name at least one of xlsx, csv, geojson, pdf"));
        }
        for (i, f) in self.formats.iter().enumerate() {
            if self.formats[..i].contains(f) {
                errors.push(FieldError::new(format!("formats[{i}]"), "is named twice"));
            }
        }
        errors
    }
}

/// One exported file as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileDigest {
    pub name: String,
    pub bytes: u64,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// The rows an export was made from, counted and hashed part by part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DataDigest {
    pub planned_visits: u64,
    pub planned_sha256: String,
    pub visits: u64,
    pub visits_sha256: String,
    pub reviews: u64,
    pub reviews_sha256: String,
    /// Rep-days and the hash of their distance travelled (the one figure computed from raw
    /// fixes: late fixes change it, a retention pass does not). Absent in manifests made before
    /// it was hashed.
    #[serde(default)]
    pub day_distances: u64,
    #[serde(default)]
    pub day_distances_sha256: String,
    /// Hash of the monthly bulletin as exported (territory exports; it reaches beyond the period).
    #[serde(default)]
    pub assessment_sha256: String,
    /// Photos taken for the visits (their file hash and findings) and checklist answers.
    #[serde(default)]
    pub photos: u64,
    #[serde(default)]
    pub photos_sha256: String,
    #[serde(default)]
    pub outcomes: u64,
    #[serde(default)]
    pub outcomes_sha256: String,
    /// SHA-256 over the part hashes: equal only if all are.
    pub sha256: String,
}

impl DataDigest {
    /// The parts that differ from `other` (`planned_visits`, `visits`, `reviews`,
    /// `day_distances`, `assessment`, `photos`, `outcomes`); a part this digest lacks (an older manifest) is not compared.
    pub fn changed_parts(&self, other: &DataDigest) -> Vec<&'static str> {
        let mut parts = Vec::new();
        if self.planned_sha256 != other.planned_sha256 {
            parts.push("planned_visits");
        }
        if self.visits_sha256 != other.visits_sha256 {
            parts.push("visits");
        }
        if self.reviews_sha256 != other.reviews_sha256 {
            parts.push("reviews");
        }
        if !self.day_distances_sha256.is_empty() && self.day_distances_sha256 != other.day_distances_sha256 {
            parts.push("day_distances");
        }
        if !self.assessment_sha256.is_empty() && self.assessment_sha256 != other.assessment_sha256 {
            parts.push("assessment");
        }
        if !self.photos_sha256.is_empty() && self.photos_sha256 != other.photos_sha256 {
            parts.push("photos");
        }
        if !self.outcomes_sha256.is_empty() && self.outcomes_sha256 != other.outcomes_sha256 {
            parts.push("outcomes");
        }
        parts
    }
}

/// Who made an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Generator {
    pub user_id: Option<i64>,
    pub login: String,
}

/// Everything needed to tell later whether a file is the one exported and whether the data it
/// came from has changed since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Manifest {
    pub manifest_version: u32,
    pub export_id: i64,
    pub org_id: i64,
    pub params: ExportParams,
    /// The reps the export covers (the scope's active reps when it was made): `verify` reads the
    /// same reps, so a later transfer or deactivation is not mistaken for changed data.
    #[serde(default)]
    pub rep_ids: Vec<i64>,
    pub generated_by: Generator,
    pub generated_at: DateTime<Utc>,
    /// Version of the server that made it.
    pub software_version: String,
    /// The visit rule versions of the visits exported.
    pub rule_versions: Vec<String>,
    pub metrics_version: String,
    pub files: Vec<FileDigest>,
    pub data: DataDigest,
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A visit as the data digest reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitFacts<'a> {
    pub id: i64,
    pub rep_id: i64,
    pub outlet_id: i64,
    pub rep_day: NaiveDate,
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
    pub dwell_s: i32,
    pub verdict: Verdict,
    pub risk_score: f32,
    pub rule_version: &'a str,
    pub review: Option<Review>,
}

/// A planned visit as the data digest reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFacts {
    pub id: i64,
    pub rep_id: i64,
    pub outlet_id: i64,
    pub day: NaiveDate,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
}

/// A review as the data digest reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewFacts<'a> {
    pub id: i64,
    pub visit_id: Option<i64>,
    pub reviewer_id: i64,
    pub decision: ReviewDecision,
    pub reason: &'a str,
    pub created_at: DateTime<Utc>,
}

/// Hashes the rows behind an export, one canonical line per row, in the order they are read.
#[derive(Default, Clone)]
pub struct DataHasher {
    planned: (u64, Sha256),
    visits: (u64, Sha256),
    reviews: (u64, Sha256),
    day_distances: (u64, Sha256),
    assessment: Option<Sha256>,
    photos: (u64, Sha256),
    outcomes: (u64, Sha256),
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn opt_ms(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(String::new, |t| ms(t).to_string())
}

impl DataHasher {
    pub fn planned(&mut self, p: &PlannedFacts) {
        let line = format!(
            "{}|{}|{}|{}|{}|{}\n",
            p.id,
            p.rep_id,
            p.outlet_id,
            p.day,
            opt_ms(p.window_start),
            opt_ms(p.window_end)
        );
        self.planned.0 += 1;
        self.planned.1.update(line.as_bytes());
    }

    pub fn visit(&mut self, v: &VisitFacts<'_>) {
        let line = format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{:.6}|{}|{}\n",
            v.id,
            v.rep_id,
            v.outlet_id,
            v.rep_day,
            ms(v.arrival),
            ms(v.departure),
            v.dwell_s,
            v.verdict,
            v.risk_score,
            v.rule_version,
            v.review.map_or("", Review::as_str)
        );
        self.visits.0 += 1;
        self.visits.1.update(line.as_bytes());
    }

    pub fn review(&mut self, r: &ReviewFacts<'_>) {
        // The reason is hashed on its own so that a `|` or a newline in it cannot shift fields.
        let line = format!(
            "{}|{}|{}|{}|{}|{}\n",
            r.id,
            r.visit_id.map_or_else(String::new, |v| v.to_string()),
            r.reviewer_id,
            r.decision,
            ms(r.created_at),
            sha256_hex(r.reason.as_bytes())
        );
        self.reviews.0 += 1;
        self.reviews.1.update(line.as_bytes());
    }

    /// A rep-day's distance travelled, in centimetres (what the export shows, to the metre).
    pub fn day_distance(&mut self, rep_id: i64, day: NaiveDate, distance_m: f64) {
        let line = format!("{rep_id}|{day}|{:.0}\n", distance_m * 100.0);
        self.day_distances.0 += 1;
        self.day_distances.1.update(line.as_bytes());
    }

    /// A visit's photo: its file's hash, where it belongs and what was found.
    pub fn photo(&mut self, id: i64, visit_id: Option<i64>, sha256: &str, findings: &serde_json::Value) {
        let visit = visit_id.map_or_else(String::new, |v| v.to_string());
        let line = format!("{id}|{visit}|{sha256}|{}\n", sha256_hex(findings.to_string().as_bytes()));
        self.photos.0 += 1;
        self.photos.1.update(line.as_bytes());
    }

    /// A visit's checklist answers.
    pub fn outcome(&mut self, id: i64, visit_id: Option<i64>, checklist_id: i64, answers: &serde_json::Value) {
        let visit = visit_id.map_or_else(String::new, |v| v.to_string());
        let line = format!("{id}|{visit}|{checklist_id}|{}\n", sha256_hex(answers.to_string().as_bytes()));
        self.outcomes.0 += 1;
        self.outcomes.1.update(line.as_bytes());
    }

    /// The monthly bulletin, serialised.
    pub fn assessment(&mut self, bulletin: &[u8]) {
        self.assessment.get_or_insert_with(Sha256::new).update(bulletin);
    }

    pub fn finish(self) -> DataDigest {
        let planned_sha256 = hex::encode(self.planned.1.finalize());
        let visits_sha256 = hex::encode(self.visits.1.finalize());
        let reviews_sha256 = hex::encode(self.reviews.1.finalize());
        let day_distances_sha256 = hex::encode(self.day_distances.1.finalize());
        let assessment_sha256 = self.assessment.map(|h| hex::encode(h.finalize())).unwrap_or_default();
        let photos_sha256 = hex::encode(self.photos.1.finalize());
        let outcomes_sha256 = hex::encode(self.outcomes.1.finalize());
        let sha256 = sha256_hex(
            format!(
                "{planned_sha256}{visits_sha256}{reviews_sha256}{day_distances_sha256}{assessment_sha256}{photos_sha256}{outcomes_sha256}"
            )
            .as_bytes(),
        );
        DataDigest {
            planned_visits: self.planned.0,
            planned_sha256,
            visits: self.visits.0,
            visits_sha256,
            reviews: self.reviews.0,
            reviews_sha256,
            day_distances: self.day_distances.0,
            day_distances_sha256,
            assessment_sha256,
            photos: self.photos.0,
            photos_sha256,
            outcomes: self.outcomes.0,
            outcomes_sha256,
            sha256,
        }
    }
}

/// What `verify` found for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FileCheck {
    /// The given file's hex SHA-256.
    pub sha256: String,
    pub bytes: u64,
    /// The manifest's file it matches, if any.
    pub matches: Option<String>,
}

/// Which file of `manifest`, if any, has `sha256` (and length `bytes`).
pub fn check_file(manifest: &Manifest, sha256: &str, bytes: u64) -> FileCheck {
    let matches = manifest
        .files
        .iter()
        .find(|f| f.sha256.eq_ignore_ascii_case(sha256) && f.bytes == bytes)
        .map(|f| f.name.clone());
    FileCheck { sha256: sha256.to_owned(), bytes, matches }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn visit(review: Option<Review>) -> VisitFacts<'static> {
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().expect("valid time");
        VisitFacts {
            id: 7,
            rep_id: 2,
            outlet_id: 40,
            rep_day: t.date_naive(),
            arrival: t,
            departure: t + chrono::Duration::minutes(6),
            dwell_s: 360,
            verdict: Verdict::Verified,
            risk_score: 0.0,
            rule_version: "visits-v3",
            review,
        }
    }

    #[test]
    fn the_digest_changes_with_a_review_and_only_in_its_part() {
        let mut a = DataHasher::default();
        a.visit(&visit(None));
        let mut b = DataHasher::default();
        b.visit(&visit(Some(Review::Rejected)));
        let (a, b) = (a.finish(), b.finish());
        assert_ne!(a.sha256, b.sha256);
        assert_eq!(a.changed_parts(&b), vec!["visits"]);
        let mut c = DataHasher::default();
        c.visit(&visit(None));
        assert_eq!(c.finish(), a);
    }

    #[test]
    fn rows_are_hashed_as_the_text_the_database_holds() {
        let mut h = DataHasher::default();
        h.visit(&visit(Some(Review::Accepted)));
        let line = "7|2|40|2026-11-02|1793610000000|1793610360000|360|verified|0.000000|visits-v3|accepted\n";
        assert_eq!(h.finish().visits_sha256, sha256_hex(line.as_bytes()));
    }

    #[test]
    fn a_reason_cannot_forge_another_row() {
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().expect("valid time");
        let review = |reason| ReviewFacts {
            id: 1,
            visit_id: Some(7),
            reviewer_id: 3,
            decision: ReviewDecision::Accepted,
            reason,
            created_at: t,
        };
        let mut a = DataHasher::default();
        a.review(&review("ok\n2|7|3|rejected"));
        let mut b = DataHasher::default();
        b.review(&review("ok"));
        assert_ne!(a.finish().reviews_sha256, b.finish().reviews_sha256);
    }

    #[test]
    fn params_name_every_problem() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let p = ExportParams {
            scope: ExportScope::Rep { id: 1 },
            from: d("2026-01-01"),
            to: d("2027-06-01"),
            formats: vec![ExportFormat::Csv, ExportFormat::Csv],
        };
        let fields: Vec<String> = p.problems().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["to", "formats[1]"]);
    }

    #[test]
    fn a_file_matches_by_hash_and_length() {
        let m = Manifest {
            manifest_version: MANIFEST_VERSION,
            export_id: 1,
            org_id: 1,
            params: ExportParams {
                scope: ExportScope::Rep { id: 1 },
                from: NaiveDate::MIN,
                to: NaiveDate::MIN,
                formats: vec![ExportFormat::Csv],
            },
            rep_ids: vec![1],
            generated_by: Generator { user_id: None, login: "cli".into() },
            generated_at: Utc::now(),
            software_version: "0".into(),
            rule_versions: vec![],
            metrics_version: METRICS_VERSION.into(),
            files: vec![FileDigest { name: "audit-csv.zip".into(), bytes: 3, sha256: sha256_hex(b"abc") }],
            data: DataHasher::default().finish(),
        };
        assert_eq!(check_file(&m, &sha256_hex(b"abc"), 3).matches.as_deref(), Some("audit-csv.zip"));
        assert_eq!(check_file(&m, &sha256_hex(b"abd"), 3).matches, None);
    }
}
