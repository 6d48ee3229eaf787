//! Bulk import of outlets from CSV and GeoJSON: reading the file, mapping its columns, and judging
//! every row before anything is written. Pure: no I/O. The database side (`db::import`) loads what
//! the judgement needs — the org's tiers, the territories named in the file, the outlets that already
//! carry the file's codes and the territory each point falls in — and hands it back to [`check_org`]
//! and [`plan`], which decide what to insert, what to update and what to reject.
//!
//! Row numbers (`FieldError::index`): for CSV the line number in the file where the record starts
//! (the header is line 1, so the first data row is 2); for GeoJSON the position in `features`,
//! counted from 0.

use super::access::Scope;
use super::crs::Crs;
use super::outlet::{ChannelType, MAX_RADIUS_M, OutletStatus};
use super::validation::{FieldError, check_lat_lon, check_text};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

/// Atomic: any bad row and nothing is written. Partial: the good rows are written, the bad reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Atomic,
    Partial,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Atomic => "atomic",
            Mode::Partial => "partial",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "atomic" => Ok(Mode::Atomic),
            "partial" => Ok(Mode::Partial),
            _ => Err(format!("unknown import mode `{}` (expected atomic or partial)", shown(s))),
        }
    }
}

/// The kind of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Format {
    Csv,
    #[cfg_attr(feature = "clap", value(name = "geojson", alias = "json"))]
    GeoJson,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::GeoJson => "geojson",
        }
    }

    /// The format a media type (`content-type`, parameters allowed) names, if any.
    pub fn from_media_type(media_type: &str) -> Option<Format> {
        let essence = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" | "application/csv" | "text/comma-separated-values" => Some(Format::Csv),
            "application/geo+json" | "application/json" | "application/vnd.geo+json" => Some(Format::GeoJson),
            _ => None,
        }
    }

    /// The format a file name's extension names, if any.
    pub fn from_file_name(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" => Some(Format::Csv),
            "geojson" | "json" => Some(Format::GeoJson),
            _ => None,
        }
    }

    /// Guesses from the content: a JSON object is GeoJSON, anything else CSV.
    pub fn sniff(bytes: &[u8]) -> Format {
        let first = strip_bom(bytes).iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') { Format::GeoJson } else { Format::Csv }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "geojson" | "json" | "geo+json" => Ok(Format::GeoJson),
            _ => Err(format!("unknown import format `{}` (expected csv or geojson)", shown(s))),
        }
    }
}

/// The fields the importer understands. Every other column becomes an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    Code,
    Name,
    ChannelType,
    Tier,
    Lat,
    Lon,
    Radius,
    Status,
    Territory,
    Address,
    Wkt,
}

const FIELDS: [Field; 11] = [
    Field::Code,
    Field::Name,
    Field::ChannelType,
    Field::Tier,
    Field::Lat,
    Field::Lon,
    Field::Radius,
    Field::Status,
    Field::Territory,
    Field::Address,
    Field::Wkt,
];

impl Field {
    /// The name errors use.
    fn name(self) -> &'static str {
        self.aliases()[0]
    }

    /// Accepted header names after normalisation (lower case, spaces and dashes as `_`); the first
    /// one is the field's own name.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Code => &["code", "outlet_code", "id"],
            Field::Name => &["name", "outlet_name"],
            Field::ChannelType => &["channel_type", "channel", "type"],
            Field::Tier => &["tier"],
            Field::Lat => &["lat", "latitude", "y"],
            Field::Lon => &["lon", "lng", "long", "longitude", "x"],
            Field::Radius => &["radius_m", "radius"],
            Field::Status => &["status"],
            Field::Territory => &["territory", "territory_code"],
            Field::Address => &["address"],
            Field::Wkt => &["wkt"],
        }
    }

    fn from_header(header: &str) -> Option<Field> {
        let key = normalise_key(header);
        FIELDS.into_iter().find(|f| f.aliases().contains(&key.as_str()))
    }
}

/// The accepted column names: (field, aliases including the field's own name).
pub fn accepted_headers() -> Vec<(&'static str, &'static [&'static str])> {
    FIELDS.iter().map(|f| (f.name(), f.aliases())).collect()
}

fn normalise_key(header: &str) -> String {
    header.trim().to_lowercase().replace([' ', '-'], "_")
}

/// A user-supplied value shortened for an error message.
fn shown(s: &str) -> String {
    const MAX: usize = 40;
    let s = s.trim();
    if s.chars().count() <= MAX { s.to_owned() } else { format!("{}…", s.chars().take(MAX).collect::<String>()) }
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// One row of the file whose values are each acceptable on their own (org-level checks come later).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Line number (CSV) or feature position (GeoJSON).
    pub index: usize,
    pub code: String,
    pub name: String,
    pub channel_type: ChannelType,
    pub tier: String,
    pub lat: f64,
    pub lon: f64,
    /// `None`: keep the outlet's radius (new outlets: the tier's default).
    pub radius_m: Option<f64>,
    /// `None`: keep the outlet's status (new outlets: `active`).
    pub status: Option<OutletStatus>,
    /// Territory code; `None`: by point-in-polygon (or the outlet's own when it does not move).
    pub territory: Option<String>,
    /// `None`: keep the outlet's address.
    pub address: Option<String>,
    /// The extra columns; merged over the outlet's attributes.
    pub attributes: Map<String, Value>,
}

/// A file read: the rows that passed the per-row checks and the errors of the others.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<Row>,
    pub errors: Vec<FieldError>,
    /// Data rows (CSV records or features) in the file.
    pub total: usize,
    /// The tier and territory of the rejected rows, so that [`check_org`] reports their errors too.
    pub rejected: Vec<OrgRefs>,
}

impl Parsed {
    /// Converts every row's position from `crs` to WGS-84 (the rows were read as given; outside
    /// mainland China nothing moves).
    pub fn convert_to_wgs84(&mut self, crs: Crs) {
        if crs == Crs::Wgs84 {
            return;
        }
        for row in &mut self.rows {
            (row.lat, row.lon) = crs.to_wgs84(row.lat, row.lon);
        }
    }
}

/// What a row refers to in the org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRefs {
    pub index: usize,
    pub tier: Option<String>,
    pub territory: Option<String>,
}

impl OrgRefs {
    fn of(index: usize, cells: &Cells<'_>) -> Self {
        OrgRefs {
            index,
            tier: cells.get(Field::Tier).map(str::to_owned),
            territory: cells.get(Field::Territory).map(str::to_owned),
        }
    }
}

/// Reads a whole file. `Err` holds the problems that make the file unreadable as a whole
/// (not UTF-8 headers, missing required columns, not a `FeatureCollection`, ...).
pub fn parse(format: Format, bytes: &[u8]) -> Result<Parsed, Vec<FieldError>> {
    match format {
        Format::Csv => parse_csv(bytes),
        Format::GeoJson => parse_geojson(bytes),
    }
}

/// The values of one record by field, and its location when the format carries it outside the
/// fields (a GeoJSON geometry).
#[derive(Default)]
struct Cells<'a> {
    values: [Option<Cow<'a, str>>; FIELDS.len()],
    /// GeoJSON: the feature's Point geometry, when it has one.
    geometry: Option<Result<(f64, f64), String>>,
    geojson: bool,
}

impl<'a> Cells<'a> {
    fn get(&self, f: Field) -> Option<&str> {
        self.values[f as usize].as_deref().map(str::trim).filter(|v| !v.is_empty())
    }

    fn set(&mut self, f: Field, v: Cow<'a, str>) {
        self.values[f as usize] = Some(v);
    }
}

/// Accumulates the errors of one record.
struct RowErrors<'e> {
    index: usize,
    errors: &'e mut Vec<FieldError>,
    count: usize,
}

impl RowErrors<'_> {
    fn push(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(FieldError::new(field, reason).at(self.index));
        self.count += 1;
    }
}

/// Parses a decimal number; a single comma is read as the decimal point (`39,95`), as spreadsheets
/// with semicolon-separated exports write it.
fn number(text: &str) -> Option<f64> {
    let t = text.trim();
    let t: Cow<str> =
        if !t.contains('.') && t.matches(',').count() == 1 { t.replace(',', ".").into() } else { t.into() };
    t.parse::<f64>().ok()
}

/// Reads a WKT point, `POINT(lon lat)` (also `POINT (lon lat)`, `SRID=4326;POINT(...)`, a Z value is
/// ignored). Returns (lon, lat).
pub fn parse_wkt_point(text: &str) -> Result<(f64, f64), String> {
    let bad = || format!("expected `POINT(lon lat)`, not `{}`", shown(text));
    let mut t = text.trim();
    if let Some((srid, rest)) = t.split_once(';') {
        let srid = srid.trim();
        let value = srid.get(..5).filter(|p| p.eq_ignore_ascii_case("srid=")).map(|_| srid[5..].trim());
        match value {
            Some("4326") => t = rest.trim(),
            Some(other) => {
                return Err(format!("SRID {} is not supported; give WGS84 (4326) coordinates", shown(other)));
            }
            None => return Err(bad()),
        }
    }
    let upper = t.to_ascii_uppercase();
    let Some(rest) = upper.strip_prefix("POINT") else {
        return Err(bad());
    };
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('Z').or_else(|| rest.strip_prefix("M")).unwrap_or(rest).trim_start();
    let inner = rest.strip_prefix('(').and_then(|r| r.trim_end().strip_suffix(')')).ok_or_else(bad)?;
    if inner.trim() == "EMPTY" || inner.trim().is_empty() {
        return Err("the point is empty".into());
    }
    let nums: Vec<&str> = inner.split_whitespace().collect();
    if !(2..=4).contains(&nums.len()) {
        return Err(bad());
    }
    let lon = nums[0].parse::<f64>().map_err(|_| bad())?;
    let lat = nums[1].parse::<f64>().map_err(|_| bad())?;
    Ok((lon, lat))
}

/// Where the row's location came from: the field errors are reported on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    LatLon,
    Wkt,
    Geometry,
}

fn location(cells: &Cells<'_>, e: &mut RowErrors<'_>) -> Option<(f64, f64)> {
    let before = e.count;
    let mut latlon = None;
    match (cells.get(Field::Lat), cells.get(Field::Lon)) {
        (Some(lat), Some(lon)) => {
            let (la, lo) = (number(lat), number(lon));
            if la.is_none() {
                e.push("lat", format!("must be a number between -90 and 90, not `{}`", shown(lat)));
            }
            if lo.is_none() {
                e.push("lon", format!("must be a number between -180 and 180, not `{}`", shown(lon)));
            }
            if let (Some(la), Some(lo)) = (la, lo) {
                latlon = Some((la, lo));
            }
        }
        (Some(_), None) => e.push("lon", "is required when lat is given"),
        (None, Some(_)) => e.push("lat", "is required when lon is given"),
        (None, None) => {}
    }
    let mut wkt = None;
    if let Some(text) = cells.get(Field::Wkt) {
        match parse_wkt_point(text) {
            Ok((lon, lat)) => wkt = Some((lat, lon)),
            Err(reason) => e.push("wkt", reason),
        }
    }
    let mut geometry = None;
    if let Some(g) = &cells.geometry {
        match g {
            Ok(p) => geometry = Some(*p),
            Err(reason) => e.push("geometry", reason.clone()),
        }
    }
    if e.count > before {
        return None;
    }
    if let (Some(a), Some(b)) = (latlon, wkt)
        && !same_position(a, b)
    {
        e.push("wkt", format!("POINT({} {}) disagrees with lat/lon ({}, {})", b.1, b.0, a.0, a.1));
        return None;
    }
    let (point, source) = match (geometry, latlon, wkt) {
        (Some(p), _, _) => (p, Source::Geometry),
        (None, Some(p), _) => (p, Source::LatLon),
        (None, None, Some(p)) => (p, Source::Wkt),
        (None, None, None) => {
            if cells.geojson {
                e.push("geometry", "is required: a Point");
            } else {
                e.push("lat", "is required: give lat and lon, or wkt");
            }
            return None;
        }
    };
    let mut range = Vec::new();
    check_lat_lon(point.0, point.1, &mut range);
    for err in range {
        let field = match source {
            Source::LatLon => err.field.as_str(),
            Source::Wkt => "wkt",
            Source::Geometry => "geometry",
        };
        let reason = match source {
            Source::LatLon => err.reason,
            _ if err.reason.contains("null island") => err.reason,
            _ => format!("{}: {}", if err.field == "lat" { "latitude" } else { "longitude" }, err.reason),
        };
        e.push(field, reason);
    }
    (e.count == before).then_some(point)
}

/// Exact equality of two (lat, lon) pairs: a stored position against the file's is a move only when
/// the numbers differ.
#[allow(clippy::float_cmp)]
fn same_position(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 == b.0 && a.1 == b.1
}

/// Turns one record into a [`Row`], or pushes its errors.
fn build_row(index: usize, cells: &Cells<'_>, attributes: Map<String, Value>, e: &mut RowErrors<'_>) -> Option<Row> {
    let before = e.count;
    let text = |f: Field, max: usize, e: &mut RowErrors<'_>| -> String {
        let v = cells.get(f).unwrap_or_default();
        if v.is_empty() {
            e.push(f.name(), "is required");
        } else {
            let mut errs = Vec::new();
            check_text(f.name(), v, max, &mut errs);
            for err in errs {
                e.push(&err.field, err.reason);
            }
        }
        v.to_owned()
    };
    let code = text(Field::Code, 64, e);
    let name = text(Field::Name, 200, e);
    let channel_raw = cells.get(Field::ChannelType).unwrap_or_default();
    let channel_type = if channel_raw.is_empty() {
        e.push("channel_type", "is required");
        None
    } else {
        let parsed = normalise_key(channel_raw).parse::<ChannelType>();
        if parsed.is_err() {
            let expected = ChannelType::ALL.map(ChannelType::as_str).join(", ");
            e.push(
                "channel_type",
                format!("unknown channel type `{}` (expected one of {expected})", shown(channel_raw)),
            );
        }
        parsed.ok()
    };
    let tier = text(Field::Tier, 16, e);
    let point = location(cells, e);
    let radius_m = cells.get(Field::Radius).and_then(|r| match number(r) {
        Some(v) if v.is_finite() && v > 0.0 && v <= MAX_RADIUS_M => Some(v),
        Some(_) => {
            e.push("radius_m", format!("must be greater than 0 and at most {MAX_RADIUS_M} m, not `{}`", shown(r)));
            None
        }
        None => {
            e.push("radius_m", format!("must be a number of metres, not `{}`", shown(r)));
            None
        }
    });
    let status = cells.get(Field::Status).map(str::to_lowercase).and_then(|s| {
        let parsed = s.parse::<OutletStatus>();
        if parsed.is_err() {
            e.push("status", format!("unknown status `{}` (expected active, closed or suspended)", shown(&s)));
        }
        parsed.ok()
    });
    let territory = cells.get(Field::Territory).map(str::to_owned);
    let address = cells.get(Field::Address).map(str::to_owned);
    if let Some(c) =
        address.as_deref().and_then(|a| super::validation::control_character(a, super::validation::Lines::Many))
    {
        e.push(Field::Address.name(), super::validation::control_character_reason(c));
    }
    if e.count > before {
        return None;
    }
    let (lat, lon) = point?;
    let channel_type = channel_type?;
    Some(Row { index, code, name, channel_type, tier, lat, lon, radius_m, status, territory, address, attributes })
}

/// Tracks the first row of each code to report duplicates.
#[derive(Default)]
struct Codes(HashMap<String, usize>);

impl Codes {
    /// Pushes an error when `code` was seen before.
    fn check(&mut self, cells: &Cells<'_>, unit: &str, e: &mut RowErrors<'_>) {
        if let Some(code) = cells.get(Field::Code) {
            match self.0.get(code) {
                Some(first) => {
                    e.push("code", format!("duplicate code `{}`: first given on {unit} {first}", shown(code)));
                }
                None => {
                    self.0.insert(code.to_owned(), e.index);
                }
            }
        }
    }
}

/// The column delimiter: whichever of `,` `;` and tab occurs most often outside quotes in the header line.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let (mut quoted, mut counts) = (false, [0usize; 3]);
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

/// What a CSV column feeds.
enum Column {
    Known(Field),
    Attribute(String),
    Ignored,
}

/// Maps header names to fields; `Err` lists missing or repeated columns.
fn map_headers<'h>(headers: impl Iterator<Item = &'h str>) -> Result<Vec<Column>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut columns = Vec::new();
    let mut seen: HashMap<Field, &str> = HashMap::new();
    let mut attrs = HashSet::new();
    for h in headers {
        let column = if h.trim().is_empty() {
            Column::Ignored
        } else if let Some(f) = Field::from_header(h) {
            if let Some(prev) = seen.insert(f, h) {
                errors.push(FieldError::new(
                    f.name(),
                    format!("two columns give {}: `{}` and `{}`", f.name(), shown(prev), shown(h)),
                ));
            }
            Column::Known(f)
        } else {
            let key = h.trim().to_owned();
            if !attrs.insert(key.clone()) {
                errors.push(FieldError::new(key.clone(), "this column appears twice"));
            }
            Column::Attribute(key)
        };
        columns.push(column);
    }
    for f in [Field::Code, Field::Name, Field::ChannelType, Field::Tier] {
        if !seen.contains_key(&f) {
            errors.push(FieldError::new(f.name(), format!("missing column (accepted: {})", f.aliases().join(", "))));
        }
    }
    let (lat, lon, wkt) =
        (seen.contains_key(&Field::Lat), seen.contains_key(&Field::Lon), seen.contains_key(&Field::Wkt));
    if !(wkt || lat && lon) {
        if !lat {
            errors.push(FieldError::new(
                "lat",
                format!("missing column (accepted: {}; or a wkt column)", Field::Lat.aliases().join(", ")),
            ));
        }
        if !lon {
            errors.push(FieldError::new(
                "lon",
                format!("missing column (accepted: {}; or a wkt column)", Field::Lon.aliases().join(", ")),
            ));
        }
    } else if lat != lon {
        let (missing, f) = if lat { ("lon", Field::Lon) } else { ("lat", Field::Lat) };
        errors.push(FieldError::new(
            missing,
            format!("missing column (accepted: {}); lat and lon come in pairs", f.aliases().join(", ")),
        ));
    }
    if errors.is_empty() { Ok(columns) } else { Err(errors) }
}

const NOT_UTF8: &str = "is not valid UTF-8 (save the file as UTF-8; Excel \"ANSI\"/GBK exports are not accepted)";

/// Reads CSV: UTF-8 with an optional BOM; `,`, `;` or tab delimited (sniffed from the header line);
/// RFC 4180 quoting. Rows whose cells are all blank are skipped.
pub fn parse_csv(bytes: &[u8]) -> Result<Parsed, Vec<FieldError>> {
    let bytes = strip_bom(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![FieldError::new("file", "the file is empty: expected a header line and data rows")]);
    }
    let mut reader =
        csv::ReaderBuilder::new().delimiter(sniff_delimiter(bytes)).flexible(true).has_headers(true).from_reader(bytes);
    let header = reader
        .byte_headers()
        .map_err(|e| vec![FieldError::new("file", format!("unreadable CSV header: {e}"))])?
        .clone();
    let names: Vec<&str> = header
        .iter()
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()
        .map_err(|_| vec![FieldError::new("file", format!("the header line {NOT_UTF8}"))])?;
    let columns = map_headers(names.iter().copied())?;
    let mut parsed = Parsed::default();
    let mut codes = Codes::default();
    let mut record = csv::ByteRecord::new();
    // Line numbers are counted here from byte offsets: the csv crate does not count skipped blank lines.
    let (mut line, mut counted_to) = (1usize, 0usize);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => {
                let line = err.position().map_or(0, csv::Position::line);
                return Err(vec![FieldError::new("file", format!("unreadable CSV at line {line}: {err}"))]);
            }
        }
        if record.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        let mut start = record.position().map_or(counted_to, |p| p.byte() as usize).clamp(counted_to, bytes.len());
        // The reported start is where the previous record ended; blank lines in between are skipped.
        while matches!(bytes.get(start), Some(b'\n' | b'\r')) {
            start += 1;
        }
        // A line ends at `\n`, `\r\n` or a lone `\r` (old Mac files), as the csv crate ends records.
        let newlines = bytes[counted_to..start]
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(counted_to + i + 1) != Some(&b'\n')))
            .count();
        line += newlines;
        counted_to = start;
        let index = line;
        parsed.total += 1;
        let mut e = RowErrors { index, errors: &mut parsed.errors, count: 0 };
        let mut cells = Cells::default();
        let mut attributes = Map::new();
        for (i, raw) in record.iter().enumerate() {
            let Some(column) = columns.get(i) else {
                if !raw.iter().all(u8::is_ascii_whitespace) {
                    e.push("row", format!("has more values than the header has columns ({})", columns.len()));
                    break;
                }
                continue;
            };
            let label = match column {
                Column::Known(f) => f.name(),
                Column::Attribute(key) => key.as_str(),
                Column::Ignored => continue,
            };
            let Ok(value) = std::str::from_utf8(raw) else {
                e.push(label, format!("the value {NOT_UTF8}"));
                if let Column::Known(f) = column {
                    cells.set(*f, String::from_utf8_lossy(raw));
                }
                continue;
            };
            match column {
                Column::Known(f) => cells.set(*f, Cow::Borrowed(value)),
                Column::Attribute(key) => {
                    let v = value.trim();
                    if !v.is_empty() {
                        attributes.insert(key.clone(), Value::String(v.to_owned()));
                    }
                }
                Column::Ignored => {}
            }
        }
        codes.check(&cells, "line", &mut e);
        let clean = e.count == 0;
        match build_row(index, &cells, attributes, &mut e) {
            Some(row) if clean => parsed.rows.push(row),
            _ => parsed.rejected.push(OrgRefs::of(index, &cells)),
        }
    }
    Ok(parsed)
}

/// Reads a GeoJSON `FeatureCollection` (or a single `Feature`) of Point features. Properties use the
/// CSV column names; other properties become attributes with their JSON values.
pub fn parse_geojson(bytes: &[u8]) -> Result<Parsed, Vec<FieldError>> {
    let file_error = |reason: String| vec![FieldError::new("file", reason)];
    let doc: Value =
        serde_json::from_slice(strip_bom(bytes)).map_err(|e| file_error(format!("not valid JSON: {e}")))?;
    let features: Vec<&Value> = match doc.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => doc
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| file_error("a FeatureCollection needs a `features` array".into()))?
            .iter()
            .collect(),
        Some("Feature") => vec![&doc],
        Some(other) => {
            return Err(file_error(format!("expected a GeoJSON FeatureCollection, not `{}`", shown(other))));
        }
        None => return Err(file_error("expected a GeoJSON FeatureCollection (no `type` member)".into())),
    };
    let mut parsed = Parsed::default();
    let mut codes = Codes::default();
    for (index, feature) in features.into_iter().enumerate() {
        parsed.total += 1;
        let mut e = RowErrors { index, errors: &mut parsed.errors, count: 0 };
        if feature.get("type").and_then(Value::as_str) != Some("Feature") {
            e.push("type", "each element of `features` must be a GeoJSON Feature");
            continue;
        }
        let geometry = match feature.get("geometry") {
            None | Some(Value::Null) => None,
            Some(g) => Some(point_geometry(g)),
        };
        let mut cells = Cells { geometry, geojson: true, ..Cells::default() };
        let mut attributes = Map::new();
        let props = match feature.get("properties") {
            Some(Value::Object(p)) => Some(p),
            None | Some(Value::Null) => None,
            Some(_) => {
                e.push("properties", "must be an object");
                continue;
            }
        };
        let mut given: HashMap<Field, &str> = HashMap::new();
        for (key, value) in props.into_iter().flatten() {
            match Field::from_header(key) {
                Some(f) => {
                    if let Some(prev) = given.insert(f, key) {
                        e.push(f.name(), format!("two properties give {}: `{}` and `{}`", f.name(), prev, shown(key)));
                    }
                    match value {
                        Value::String(s) => cells.set(f, Cow::Borrowed(s.as_str())),
                        Value::Number(n) => cells.set(f, Cow::Owned(n.to_string())),
                        Value::Bool(b) => cells.set(f, Cow::Owned(b.to_string())),
                        Value::Null => {}
                        Value::Array(_) | Value::Object(_) => e.push(f.name(), "must be text or a number"),
                    }
                }
                None if !value.is_null() => {
                    attributes.insert(key.trim().to_owned(), value.clone());
                }
                None => {}
            }
        }
        // The feature's own `id` is its code when the properties give none.
        if cells.get(Field::Code).is_none() {
            match feature.get("id") {
                Some(Value::String(s)) => cells.set(Field::Code, Cow::Borrowed(s.as_str())),
                Some(Value::Number(n)) => cells.set(Field::Code, Cow::Owned(n.to_string())),
                _ => {}
            }
        }
        codes.check(&cells, "feature", &mut e);
        let clean = e.count == 0;
        match build_row(index, &cells, attributes, &mut e) {
            Some(row) if clean => parsed.rows.push(row),
            _ => parsed.rejected.push(OrgRefs::of(index, &cells)),
        }
    }
    Ok(parsed)
}

/// (lat, lon) of a GeoJSON Point geometry, or why it is not one.
fn point_geometry(g: &Value) -> Result<(f64, f64), String> {
    let kind = g.get("type").and_then(Value::as_str).unwrap_or("?");
    if kind != "Point" {
        return Err(format!("must be a Point, not {}", shown(kind)));
    }
    let coords = g.get("coordinates").and_then(Value::as_array).ok_or("a Point needs `coordinates`")?;
    match coords.as_slice() {
        [lon, lat, ..] if coords.len() <= 3 => match (lon.as_f64(), lat.as_f64()) {
            (Some(lon), Some(lat)) => Ok((lat, lon)),
            _ => Err("coordinates must be numbers [lon, lat]".into()),
        },
        _ => Err("coordinates must be [lon, lat]".into()),
    }
}

/// A territory as the importer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerritoryRef {
    pub id: i64,
    /// Ids from the root down to the territory itself.
    pub path: Vec<i64>,
}

/// What the org contributes to the judgement.
#[derive(Debug, Clone, Default)]
pub struct OrgContext {
    /// The org's tier labels (its tier policies).
    pub tiers: Vec<String>,
    /// Territories by code (at least those the file names).
    pub territories: HashMap<String, TerritoryRef>,
}

/// The distinct territory codes the rows name.
pub fn territory_codes(parsed: &Parsed) -> Vec<String> {
    let named = parsed.rows.iter().filter_map(|r| r.territory.as_deref());
    let set: HashSet<&str> = named.chain(parsed.rejected.iter().filter_map(|r| r.territory.as_deref())).collect();
    let mut codes: Vec<String> = set.into_iter().map(str::to_owned).collect();
    codes.sort();
    codes
}

/// Checks the rows against the org: tier in the tier policies (matched case-insensitively when
/// unambiguous, stored with the policy's spelling), territory code known. Rows that fail move from
/// `rows` to `rejected`; the rows rejected before are checked too, so each row's report is complete.
pub fn check_org(parsed: &mut Parsed, ctx: &OrgContext) {
    let tiers_text = ctx.tiers.join(", ");
    let check = |index: usize, tier: Option<&str>, territory: Option<&str>, errors: &mut Vec<FieldError>| {
        let mut ok = true;
        let mut spelled = None;
        if let Some(tier) = tier
            && !ctx.tiers.iter().any(|t| t == tier)
        {
            let matches: Vec<&String> = ctx.tiers.iter().filter(|t| t.eq_ignore_ascii_case(tier)).collect();
            if let [one] = matches.as_slice() {
                spelled = Some((*one).clone());
            } else {
                let reason = format!("`{}` is not a tier of this org's tier policies ({tiers_text})", shown(tier));
                errors.push(FieldError::new("tier", reason).at(index));
                ok = false;
            }
        }
        if let Some(code) = territory
            && !ctx.territories.contains_key(code)
        {
            let reason = format!("no territory with code `{}` in this org", shown(code));
            errors.push(FieldError::new("territory", reason).at(index));
            ok = false;
        }
        (ok, spelled)
    };
    for r in &parsed.rejected {
        check(r.index, r.tier.as_deref(), r.territory.as_deref(), &mut parsed.errors);
    }
    let rows = std::mem::take(&mut parsed.rows);
    for mut row in rows {
        match check(row.index, Some(&row.tier), row.territory.as_deref(), &mut parsed.errors) {
            (true, spelled) => {
                if let Some(t) = spelled {
                    row.tier = t;
                }
                parsed.rows.push(row);
            }
            (false, _) => {
                parsed.rejected.push(OrgRefs { index: row.index, tier: Some(row.tier), territory: row.territory });
            }
        }
    }
}

/// The stored state of an outlet whose code the file carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    pub id: i64,
    pub name: String,
    pub channel_type: ChannelType,
    pub tier: String,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: Option<f32>,
    pub status: OutletStatus,
    pub territory: Option<TerritoryRef>,
    pub address: Option<String>,
    pub attributes: Value,
}

/// What the database knows about one row: the outlet with its code, and the deepest territory
/// containing the row's point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    pub existing: Option<Existing>,
    pub located: Option<TerritoryRef>,
}

/// The new state of an outlet to insert (`existing_id` = `None`) or update.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub index: usize,
    pub existing_id: Option<i64>,
    pub code: String,
    pub name: String,
    pub channel_type: ChannelType,
    pub tier: String,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: Option<f32>,
    pub status: OutletStatus,
    pub territory_id: Option<i64>,
    pub address: Option<String>,
    pub attributes: Value,
}

/// What to write, after the final judgement.
#[derive(Debug, Default)]
pub struct Plan {
    pub writes: Vec<Write>,
    /// Rows equal to the stored outlet: nothing to write.
    pub unchanged: usize,
}

/// Reason for a row that would land outside a scoped user's territory.
pub const OUTSIDE_YOUR_TERRITORY: &str = "outside your territory";

/// Decides each row's final state from the row, the stored outlet and the point's territory
/// (`resolved[i]` belongs to `rows[i]`), and checks it against the caller's scope. Fields the row
/// leaves empty keep their stored value; a row that does not move and names no territory keeps the
/// outlet's territory, otherwise the territory is the one named or the one the point falls in.
pub fn plan(
    rows: Vec<Row>,
    resolved: Vec<Resolved>,
    ctx: &OrgContext,
    scope: Scope,
    errors: &mut Vec<FieldError>,
) -> Plan {
    assert_eq!(rows.len(), resolved.len(), "one resolution per row");
    let mut plan = Plan { writes: Vec::with_capacity(rows.len()), unchanged: 0 };
    for (row, res) in rows.into_iter().zip(resolved) {
        let Resolved { existing, located } = res;
        if let Some(ex) = &existing
            && !scope.contains(ex.territory.as_ref().map(|t| t.path.as_slice()))
        {
            errors.push(
                FieldError::new(
                    "territory",
                    format!(
                        "{OUTSIDE_YOUR_TERRITORY}: outlet `{}` belongs to a territory you do not manage",
                        shown(&row.code)
                    ),
                )
                .at(row.index),
            );
            continue;
        }
        let moved = existing.as_ref().is_none_or(|ex| !same_position((ex.lat, ex.lon), (row.lat, row.lon)));
        let territory = match (&row.territory, &existing) {
            (Some(code), _) => ctx.territories.get(code).cloned(),
            (None, Some(ex)) if !moved => ex.territory.clone(),
            (None, _) => located,
        };
        if !scope.contains(territory.as_ref().map(|t| t.path.as_slice())) {
            errors.push(FieldError::new("territory", OUTSIDE_YOUR_TERRITORY).at(row.index));
            continue;
        }
        let radius_m = row.radius_m.map(|r| r as f32).or(existing.as_ref().and_then(|e| e.radius_m));
        let status = row.status.or_else(|| existing.as_ref().map(|e| e.status)).unwrap_or(OutletStatus::Active);
        let address = row.address.or_else(|| existing.as_ref().and_then(|e| e.address.clone()));
        let mut attributes = match existing.as_ref().map(|e| &e.attributes) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        attributes.extend(row.attributes);
        let write = Write {
            index: row.index,
            existing_id: existing.as_ref().map(|e| e.id),
            code: row.code,
            name: row.name,
            channel_type: row.channel_type,
            tier: row.tier,
            lat: row.lat,
            lon: row.lon,
            radius_m,
            status,
            territory_id: territory.map(|t| t.id),
            address,
            attributes: Value::Object(attributes),
        };
        if let Some(ex) = &existing
            && !moved
            && ex.name == write.name
            && ex.channel_type == write.channel_type
            && ex.tier == write.tier
            && ex.radius_m == write.radius_m
            && ex.status == write.status
            && ex.territory.as_ref().map(|t| t.id) == write.territory_id
            && ex.address == write.address
            && ex.attributes == write.attributes
        {
            plan.unchanged += 1;
            continue;
        }
        plan.writes.push(write);
    }
    plan
}

/// The answer to an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub mode: Mode,
    /// A preview (`dry_run=true`): the counts are what the import would write, and nothing was
    /// written. In atomic mode an import of a file with bad rows writes nothing at all; the preview
    /// still counts the good rows (what a partial import, or the fixed file, would write).
    #[serde(default)]
    pub dry_run: bool,
    /// Data rows (CSV records, GeoJSON features) in the file.
    pub rows: usize,
    /// New outlets.
    pub inserted: usize,
    /// Outlets whose stored state changed.
    pub updated: usize,
    /// Rows equal to the stored outlet.
    pub unchanged: usize,
    /// Rows with at least one error (none of them written).
    pub rejected: usize,
    /// Every error: `index` is the CSV line number (header = line 1) or the GeoJSON feature position
    /// (from 0), `field` the column, `reason` what is wrong.
    pub errors: Vec<FieldError>,
}

impl ImportReport {
    /// A report whose errors are sorted by row (stably: a row's errors keep their order).
    pub fn new(mode: Mode, rows: usize, mut errors: Vec<FieldError>) -> Self {
        errors.sort_by_key(|e| e.index);
        let rejected = errors.iter().filter_map(|e| e.index).collect::<HashSet<_>>().len();
        ImportReport { mode, dry_run: false, rows, inserted: 0, updated: 0, unchanged: 0, rejected, errors }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "code,name,channel_type,tier,lat,lon";

    fn csv(text: &str) -> Parsed {
        parse_csv(text.as_bytes()).expect("readable file")
    }

    fn errs(p: &Parsed) -> Vec<(usize, &str)> {
        p.errors.iter().map(|e| (e.index.unwrap_or(usize::MAX), e.field.as_str())).collect()
    }

    #[test]
    fn reads_a_plain_file_with_line_numbers() {
        let p = csv(&format!("{HEADER}\nA1,Hall,business_hall,A,39.9,116.4\nA2,Mall,phone_mall,B,39.8,116.3\n"));
        assert_eq!(p.total, 2);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.rows[0].index, 2);
        assert_eq!(p.rows[1].index, 3);
        assert_eq!((p.rows[0].lat, p.rows[0].lon), (39.9, 116.4));
        assert_eq!(p.rows[1].channel_type, ChannelType::PhoneMall);
        assert_eq!(p.rows[0].status, None);
        assert_eq!(p.rows[0].radius_m, None);
    }

    #[test]
    fn old_mac_line_endings_give_each_row_its_own_line() {
        // A lone `\r` ends a record (the csv crate's rule) and so a line: each row keeps its index.
        let p = csv(&format!("{HEADER}\rA1,Hall,business_hall,A,39.9,116.4\r\rA2,Mall,bad,B,39.8,116.3\r\n"));
        assert_eq!(p.total, 2);
        assert_eq!(p.rows.iter().map(|r| r.index).collect::<Vec<_>>(), [2]);
        assert_eq!(errs(&p), [(4, "channel_type")]);
    }

    #[test]
    fn bom_semicolons_aliases_and_column_order() {
        let text = "\u{FEFF}Longitude;Outlet_Code;LATITUDE;Name;Channel;Tier;Radius;Segment\n\
                    116,4;X1;39,9;\"Hall; north\";Business Hall;vip;80;gold\n";
        let p = csv(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let r = &p.rows[0];
        assert_eq!(r.code, "X1");
        assert_eq!((r.lat, r.lon), (39.9, 116.4), "lon/lat by name, decimal commas");
        assert_eq!(r.name, "Hall; north", "a quoted delimiter stays in the value");
        assert_eq!(r.channel_type, ChannelType::BusinessHall);
        assert_eq!(r.tier, "vip", "tier spelling is settled against the org later");
        assert_eq!(r.radius_m, Some(80.0));
        assert_eq!(r.attributes.get("Segment"), Some(&Value::String("gold".into())));
    }

    #[test]
    fn x_y_and_lng_aliases_and_quoted_newlines() {
        // A name is one line (a line break in it is refused); an address may span lines.
        let p = csv(
            "id,name,type,tier,x,y,address\n\"Q1\",a,other,C,116.1,39.1,\"two\nlines\"\nQ2,b,other,C,116.2,39.2,\n",
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.rows[0].address.as_deref(), Some("two\nlines"));
        let refused = csv("id,name,type,tier,x,y\nQ1,\"two\nlines\",other,C,116.1,39.1\n");
        assert_eq!(refused.errors[0].field, "name", "{:?}", refused.errors);
        assert_eq!((p.rows[0].lat, p.rows[0].lon), (39.1, 116.1));
        assert_eq!(p.rows[1].index, 4, "the line number counts the embedded newline");
        let p = csv("code,name,channel_type,tier,lng,lat\nL1,n,other,A,116.5,39.5\n");
        assert_eq!((p.rows[0].lat, p.rows[0].lon), (39.5, 116.5));
    }

    #[test]
    fn wkt_instead_of_lat_lon() {
        let p = csv(
            "code,name,channel_type,tier,wkt\nW1,n,other,A,POINT(116.4 39.9)\nW2,n,other,A,SRID=4326;point (116.5 39.8)\nW3,n,other,A,POINT Z (116.6 39.7 12)\nW4,n,other,A,\"LINESTRING(1 2, 3 4)\"\nW5,n,other,A,SRID=3857;POINT(1 2)\nW6,n,other,A,POINT(200 10)\n",
        );
        let locs: Vec<_> = p.rows.iter().map(|r| (r.code.as_str(), r.lat, r.lon)).collect();
        assert_eq!(locs, [("W1", 39.9, 116.4), ("W2", 39.8, 116.5), ("W3", 39.7, 116.6)]);
        assert_eq!(errs(&p), [(5, "wkt"), (6, "wkt"), (7, "wkt")]);
        assert!(p.errors[1].reason.contains("SRID 3857"), "{:?}", p.errors[1]);
        assert!(p.errors[2].reason.contains("longitude"), "{:?}", p.errors[2]);
    }

    #[test]
    fn wkt_and_lat_lon_must_agree() {
        let p = csv(
            "code,name,channel_type,tier,lat,lon,wkt\nA,n,other,A,39.9,116.4,POINT(116.4 39.9)\nB,n,other,A,39.9,116.4,POINT(39.9 116.4)\nC,n,other,A,,,POINT(116.1 39.1)\n",
        );
        assert_eq!(p.rows.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), ["A", "C"]);
        assert_eq!(errs(&p), [(3, "wkt")]);
    }

    #[test]
    fn parse_wkt_point_edge_cases() {
        assert_eq!(parse_wkt_point("POINT(1.5 -2)"), Ok((1.5, -2.0)));
        assert_eq!(parse_wkt_point("  point(  1 2 )  "), Ok((1.0, 2.0)));
        assert_eq!(parse_wkt_point("POINT M (1 2 3)"), Ok((1.0, 2.0)));
        assert!(parse_wkt_point("POINT EMPTY").is_err());
        assert!(parse_wkt_point("POINT()").is_err());
        assert!(parse_wkt_point("POINT(1)").is_err());
        assert!(parse_wkt_point("POINT(a b)").is_err());
        assert!(parse_wkt_point("POLYGON((1 2))").is_err());
        assert!(parse_wkt_point("SRID=x;POINT(1 2)").is_err());
    }

    #[test]
    fn each_bad_value_names_its_row_and_field() {
        let text = format!(
            "{HEADER},radius_m,status\n\
             G1,Good,other,A,39.9,116.4,,\n\
             ,NoCode,other,A,39.9,116.4,,\n\
             B2,  ,kiosk,A,39.9,116.4,,\n\
             B3,n,other,,abc,116.4,,\n\
             B4,n,other,A,NaN,116.4,,\n\
             B5,n,other,A,91,181,,\n\
             B6,n,other,A,0,0,,\n\
             B7,n,other,A,39.9,116.4,0,\n\
             B8,n,other,A,39.9,116.4,-5,open\n\
             B9,n,other,A,39.9,116.4,5000.5,\n\
             B10,n,other,A,39.9,inf,x,\n\
             G2,n,other,A,39.9,116.4,5000,CLOSED\n"
        );
        let p = csv(&text);
        assert_eq!(p.total, 12);
        assert_eq!(p.rows.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), ["G1", "G2"]);
        assert_eq!(p.rows[1].status, Some(OutletStatus::Closed));
        assert_eq!(
            errs(&p),
            [
                (3, "code"),
                (4, "name"),
                (4, "channel_type"),
                (5, "tier"),
                (5, "lat"),
                (6, "lat"),
                (7, "lat"),
                (7, "lon"),
                (8, "lat"),
                (9, "radius_m"),
                (10, "radius_m"),
                (10, "status"),
                (11, "radius_m"),
                (12, "lon"),
                (12, "radius_m"),
            ]
        );
        let reason = |i: usize| &p.errors[i].reason;
        assert_eq!(reason(0), "is required");
        assert!(reason(2).starts_with("unknown channel type `kiosk`"), "{}", reason(2));
        assert!(reason(4).contains("`abc`"), "{}", reason(4));
        assert!(reason(8).contains("null island"), "{}", reason(8));
    }

    #[test]
    fn missing_lat_or_lon_value_is_named() {
        let p = csv(&format!("{HEADER}\nA,n,other,A,39.9,\nB,n,other,A,,116.4\nC,n,other,A,,\n"));
        assert_eq!(errs(&p), [(2, "lon"), (3, "lat"), (4, "lat")]);
    }

    #[test]
    fn duplicate_code_names_the_first_row() {
        let p = csv(&format!("{HEADER}\nD1,a,other,A,39.9,116.4\nD2,b,other,A,39.9,116.4\nD1,c,other,A,39.9,116.4\n"));
        assert_eq!(p.rows.len(), 2);
        assert_eq!(errs(&p), [(4, "code")]);
        assert_eq!(p.errors[0].reason, "duplicate code `D1`: first given on line 2");
    }

    #[test]
    fn other_columns_become_string_attributes_and_blank_rows_are_skipped() {
        let p = csv(&format!(
            "{HEADER},crm_id,Region,\nA,n,other,A,39.9,116.4,0042, north ,\n,,,,,,,,\n\nB,n,other,A,39.9,116.4,,x,\n"
        ));
        assert_eq!(p.total, 2);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(
            Value::Object(p.rows[0].attributes.clone()),
            serde_json::json!({"crm_id": "0042", "Region": "north"})
        );
        assert_eq!(Value::Object(p.rows[1].attributes.clone()), serde_json::json!({"Region": "x"}));
        assert_eq!(p.rows[1].index, 5, "blank lines count as lines");
        let p = csv(&format!("{HEADER}\r\nA,n,other,A,39.9,116.4\r\n\r\n\r\nB,n,other,A,39.9,116.4\r\n"));
        assert_eq!(p.rows.iter().map(|r| r.index).collect::<Vec<_>>(), [2, 5], "CRLF line ends");
    }

    #[test]
    fn file_level_problems() {
        let fields = |r: Result<Parsed, Vec<FieldError>>| {
            r.expect_err("file-level error").into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert_eq!(fields(parse_csv(b"")), ["file"]);
        assert_eq!(fields(parse_csv(b"\xEF\xBB\xBF  \n")), ["file"]);
        assert_eq!(fields(parse_csv(b"code,name,tier,lat\n")), ["channel_type", "lon"]);
        assert_eq!(fields(parse_csv(b"name,channel_type,tier,wkt\n")), ["code"]);
        assert_eq!(fields(parse_csv(b"code,name,channel_type,tier,lat,latitude,lon\n")), ["lat"]);
        assert_eq!(fields(parse_csv(b"code,name,channel_type,tier,lat,lon,extra,extra\n")), ["extra"]);
        assert_eq!(fields(parse_csv(b"c\xffode,name\n")), ["file"]);
        // A header alone is an empty import, not an error.
        assert_eq!(csv(HEADER).total, 0);
    }

    #[test]
    fn bad_utf8_in_a_cell_and_too_many_values() {
        let mut bytes = format!("{HEADER},note\nA,n,other,A,39.9,116.4,").into_bytes();
        bytes.extend_from_slice(b"caf\xe9\nB,n,other,A,39.9,116.4,x,surplus\nC,n,other,A,39.9,116.4,x,,\n");
        let p = parse_csv(&bytes).expect("readable");
        assert_eq!(errs(&p), [(2, "note"), (3, "row")]);
        assert_eq!(p.rows.len(), 1);
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1,2;3"), b';');
        assert_eq!(sniff_delimiter(b"\"a;b\",c\n"), b',');
        assert_eq!(sniff_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter(b"single"), b',');
        assert_eq!(Format::sniff(b"\xEF\xBB\xBF \n{\"type\":1}"), Format::GeoJson);
        assert_eq!(Format::sniff(b"code,name"), Format::Csv);
        assert_eq!(Format::from_media_type("text/csv; charset=utf-8"), Some(Format::Csv));
        assert_eq!(Format::from_media_type("application/geo+json"), Some(Format::GeoJson));
        assert_eq!(Format::from_media_type("multipart/form-data"), None);
        assert_eq!(Format::from_file_name("x/outlets.GeoJSON"), Some(Format::GeoJson));
        assert_eq!("Partial".parse::<Mode>(), Ok(Mode::Partial));
        assert!("all".parse::<Mode>().is_err());
    }

    #[test]
    fn number_reading() {
        assert_eq!(number(" 39.5 "), Some(39.5));
        assert_eq!(number("39,5"), Some(39.5));
        assert_eq!(number("1,000.5"), None);
        assert_eq!(number("-0.25e1"), Some(-2.5));
        assert!(number("NaN").is_some_and(f64::is_nan));
        assert_eq!(number(""), None);
    }

    #[test]
    fn geojson_points_properties_and_errors() {
        let doc = serde_json::json!({
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
                 "properties": {"Code": "G1", "name": "Hall", "channel": "phone_mall", "tier": "A",
                                "radius": 75, "floor": 3, "tags": ["a"], "none": null}},
                {"type": "Feature", "id": 42, "geometry": {"type": "Point", "coordinates": [116.5, 39.8, 50]},
                 "properties": {"name": "By id", "channel_type": "other", "tier": "B"}},
                {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []},
                 "properties": {"code": "P", "name": "n", "channel_type": "other", "tier": "A"}},
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [181, 39]},
                 "properties": {"code": "R", "name": "n", "channel_type": "other", "tier": "A"}},
                {"type": "Feature", "geometry": null,
                 "properties": {"code": "N", "name": "n", "channel_type": "other", "tier": "A"}},
                {"type": "Feature", "geometry": null,
                 "properties": {"code": "L", "name": "n", "channel_type": "other", "tier": "A", "lat": 39.1, "lon": 116.1}},
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
                 "properties": {"code": "G1", "name": "dup", "channel_type": "other", "tier": "A"}},
                {"type": "Point", "coordinates": [1, 2]}
            ]
        });
        let p = parse_geojson(doc.to_string().as_bytes()).expect("readable");
        assert_eq!(p.total, 8);
        assert_eq!(p.rows.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), ["G1", "42", "L"]);
        let g1 = &p.rows[0];
        assert_eq!((g1.index, g1.lat, g1.lon, g1.radius_m), (0, 39.9, 116.4, Some(75.0)));
        assert_eq!(g1.channel_type, ChannelType::PhoneMall);
        assert_eq!(Value::Object(g1.attributes.clone()), serde_json::json!({"floor": 3, "tags": ["a"]}));
        assert_eq!((p.rows[1].lat, p.rows[1].lon), (39.8, 116.5));
        assert_eq!(errs(&p), [(2, "geometry"), (3, "geometry"), (4, "geometry"), (6, "code"), (7, "type")]);
        assert_eq!(p.errors[3].reason, "duplicate code `G1`: first given on feature 0");
    }

    #[test]
    fn geojson_file_level_problems() {
        assert!(parse_geojson(b"{").is_err());
        assert!(parse_geojson(br#"{"type":"Point","coordinates":[1,2]}"#).is_err());
        assert!(parse_geojson(br#"{"type":"FeatureCollection"}"#).is_err());
        let single = br#"{"type":"Feature","geometry":{"type":"Point","coordinates":[116,39]},"properties":{"code":"S","name":"n","channel_type":"other","tier":"A"}}"#;
        assert_eq!(parse_geojson(single).expect("a single feature").rows.len(), 1);
    }

    fn row(index: usize, code: &str, lat: f64, lon: f64) -> Row {
        Row {
            index,
            code: code.into(),
            name: format!("{code} name"),
            channel_type: ChannelType::Other,
            tier: "A".into(),
            lat,
            lon,
            radius_m: None,
            status: None,
            territory: None,
            address: None,
            attributes: Map::new(),
        }
    }

    fn ctx() -> OrgContext {
        OrgContext {
            tiers: vec!["A".into(), "B".into(), "VIP".into()],
            territories: [
                ("R".to_owned(), TerritoryRef { id: 1, path: vec![1] }),
                ("T1".to_owned(), TerritoryRef { id: 2, path: vec![1, 2] }),
                ("T2".to_owned(), TerritoryRef { id: 3, path: vec![1, 3] }),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn org_checks_tier_and_territory_code() {
        let mut vip = row(2, "V", 39.0, 116.0);
        vip.tier = "vip".into();
        let mut unknown = row(3, "U", 39.0, 116.0);
        unknown.tier = "Z".into();
        let mut terr = row(4, "T", 39.0, 116.0);
        terr.territory = Some("NOPE".into());
        let rejected = OrgRefs { index: 1, tier: Some("Q".into()), territory: Some("T1".into()) };
        let mut parsed = Parsed {
            rows: vec![vip, unknown, terr, row(5, "OK", 39.0, 116.0)],
            errors: Vec::new(),
            total: 5,
            rejected: vec![rejected],
        };
        assert_eq!(territory_codes(&parsed), ["NOPE", "T1"]);
        check_org(&mut parsed, &ctx());
        let ok: Vec<_> = parsed.rows.iter().map(|r| (r.code.as_str(), r.tier.as_str())).collect();
        assert_eq!(ok, [("V", "VIP"), ("OK", "A")]);
        let got: Vec<_> = parsed.errors.iter().map(|e| (e.index, e.field.as_str())).collect();
        assert_eq!(got, [(Some(1), "tier"), (Some(3), "tier"), (Some(4), "territory")]);
        assert!(parsed.errors[0].reason.contains("A, B, VIP"), "{}", parsed.errors[0].reason);
        assert_eq!(parsed.rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [1, 3, 4]);
    }

    fn existing(id: i64, lat: f64, lon: f64, territory: Option<TerritoryRef>) -> Existing {
        Existing {
            id,
            name: "E name".into(),
            channel_type: ChannelType::Other,
            tier: "A".into(),
            lat,
            lon,
            radius_m: Some(60.0),
            status: OutletStatus::Closed,
            territory,
            address: Some("old street".into()),
            attributes: serde_json::json!({"keep": "1", "over": "old"}),
        }
    }

    #[test]
    fn plan_inserts_updates_and_skips_unchanged() {
        let t1 = TerritoryRef { id: 2, path: vec![1, 2] };
        let t2 = TerritoryRef { id: 3, path: vec![1, 3] };
        let new = row(2, "N", 39.0, 116.0);
        let mut same = row(3, "E", 39.5, 116.5);
        same.name = "E name".into();
        let mut moved = row(4, "M", 39.6, 116.6);
        moved.attributes.insert("over".into(), Value::String("new".into()));
        let resolved = vec![
            Resolved { existing: None, located: Some(t1.clone()) },
            Resolved { existing: Some(existing(10, 39.5, 116.5, Some(t1.clone()))), located: Some(t2.clone()) },
            Resolved { existing: Some(existing(11, 39.0, 116.0, Some(t1.clone()))), located: Some(t2.clone()) },
        ];
        let mut errors = Vec::new();
        let plan = plan(vec![new, same, moved], resolved, &ctx(), Scope::Org, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(plan.unchanged, 1, "not moved: keeps its territory although the point lies in T2");
        assert_eq!(plan.writes.len(), 2);
        let n = &plan.writes[0];
        assert_eq!((n.existing_id, n.territory_id, n.status, n.radius_m), (None, Some(2), OutletStatus::Active, None));
        let m = &plan.writes[1];
        assert_eq!(m.existing_id, Some(11));
        assert_eq!(m.territory_id, Some(3), "a moved outlet gets the territory of its new point");
        assert_eq!(
            (m.status, m.radius_m, m.address.as_deref()),
            (OutletStatus::Closed, Some(60.0), Some("old street"))
        );
        assert_eq!(m.attributes, serde_json::json!({"keep": "1", "over": "new"}));
    }

    #[test]
    fn plan_enforces_a_scoped_users_territory() {
        let t1 = TerritoryRef { id: 2, path: vec![1, 2] };
        let t2 = TerritoryRef { id: 3, path: vec![1, 3] };
        let inside = row(2, "IN", 39.0, 116.0);
        let outside = row(3, "OUT", 39.0, 116.0);
        let nowhere = row(4, "NONE", 39.0, 116.0);
        let mut named = row(5, "NAMED", 39.0, 116.0);
        named.territory = Some("T2".into());
        let foreign = row(6, "FOREIGN", 39.0, 116.0);
        let resolved = vec![
            Resolved { existing: None, located: Some(t1.clone()) },
            Resolved { existing: None, located: Some(t2.clone()) },
            Resolved { existing: None, located: None },
            Resolved { existing: None, located: Some(t1.clone()) },
            Resolved { existing: Some(existing(9, 1.0, 1.0, Some(t2.clone()))), located: Some(t1.clone()) },
        ];
        let mut errors = Vec::new();
        let plan =
            plan(vec![inside, outside, nowhere, named, foreign], resolved, &ctx(), Scope::Subtree(2), &mut errors);
        assert_eq!(plan.writes.iter().map(|w| w.code.as_str()).collect::<Vec<_>>(), ["IN"]);
        let got: Vec<_> = errors.iter().map(|e| (e.index.unwrap_or(0), e.field.as_str(), e.reason.as_str())).collect();
        assert_eq!(
            &got[..3],
            [
                (3, "territory", OUTSIDE_YOUR_TERRITORY),
                (4, "territory", OUTSIDE_YOUR_TERRITORY),
                (5, "territory", OUTSIDE_YOUR_TERRITORY)
            ]
        );
        assert_eq!(got[3].0, 6);
        assert!(got[3].2.starts_with(OUTSIDE_YOUR_TERRITORY));
    }

    #[test]
    fn report_counts_rejected_rows_once() {
        let errors = vec![
            FieldError::new("lat", "x").at(5),
            FieldError::new("code", "x").at(2),
            FieldError::new("lon", "x").at(5),
        ];
        let r = ImportReport::new(Mode::Partial, 9, errors);
        assert_eq!(r.rejected, 2);
        assert_eq!(
            r.errors.iter().map(|e| (e.index, e.field.as_str())).collect::<Vec<_>>(),
            [(Some(2), "code"), (Some(5), "lat"), (Some(5), "lon")]
        );
    }
}
