//! Field-level validation errors shared by every input check.

use serde::{Deserialize, Serialize};

/// One thing wrong with one field of the input (optionally of one item of a batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Index of the offending item in a batch, when the input is a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The field name (dotted path for nested fields).
    pub field: String,
    /// What is wrong with it, in words a person can act on.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { index: None, field: field.into(), reason: reason.into() }
    }

    #[must_use]
    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

/// How many batch items `errors` name (an item may have several field errors).
pub fn items_named(errors: &[FieldError]) -> usize {
    errors.iter().filter_map(|e| e.index).collect::<std::collections::BTreeSet<usize>>().len()
}

/// Checks that a latitude/longitude pair is a real position on the WGS84 sphere.
pub fn check_lat_lon(lat: f64, lon: f64, errors: &mut Vec<FieldError>) {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        errors.push(FieldError::new("lat", "must be a number between -90 and 90"));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        errors.push(FieldError::new("lon", "must be a number between -180 and 180"));
    }
    if lat == 0.0 && lon == 0.0 {
        errors.push(FieldError::new("lat", "(0, 0) is not a real position (null island)"));
    }
}

/// Whether a stored text may span lines (notes, addresses, answers, reasons) or is one line
/// (names, codes, labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// TAB, LF and CR are refused like every other control character.
    One,
    /// TAB, LF and CR are allowed.
    Many,
}

/// The first control character `value` holds that stored text may not: C0 (U+0000-U+001F, but
/// TAB, LF and CR in [`Lines::Many`] text), DEL (U+007F) and C1 (U+0080-U+009F). They hide text in
/// terminals and logs, break CSV and spreadsheet cells, and no person types them.
pub fn control_character(value: &str, lines: Lines) -> Option<char> {
    value.chars().find(|&c| c.is_control() && !(lines == Lines::Many && matches!(c, '\t' | '\n' | '\r')))
}

/// The reason a text with control character `c` is refused.
pub fn control_character_reason(c: char) -> String {
    format!("must not contain control characters (found U+{:04X})", u32::from(c))
}

/// Refuses a stored free text holding a control character (see [`control_character`]); the one
/// rule every writer of names, notes, answers and reasons applies.
pub fn check_plain_text(field: &str, value: &str, lines: Lines, errors: &mut Vec<FieldError>) {
    if let Some(c) = control_character(value, lines) {
        errors.push(FieldError::new(field, control_character_reason(c)));
    }
}

/// Checks that a one-line text field is present and not blank, not longer than `max`
/// characters, and free of control characters.
pub fn check_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    check_plain_text(field, value, Lines::One, errors);
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be blank"));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(field, format!("must be at most {max} characters")));
    }
}

/// Most characters of a name (of an outlet, territory, device, user, plan, checklist).
pub const NAME_MAX_CHARS: usize = 200;
/// Most characters of a code (of an outlet or territory).
pub const CODE_MAX_CHARS: usize = 64;

/// A character one-line text may hold (not a control character, see [`control_character`]).
macro_rules! one_line_char {
    () => {
        r"[^\x00-\x1F\x7F-\x9F]"
    };
}
/// A character multi-line text may hold (TAB, LF and CR too).
macro_rules! multi_line_char {
    () => {
        r"[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]"
    };
}
/// A character that makes a text not blank.
macro_rules! non_blank_char {
    () => {
        r"[^\s\x00-\x1F\x7F-\x9F]"
    };
}

/// Pattern of a one-line text that is not blank ([`check_text`]).
pub const ONE_LINE_TEXT_PATTERN: &str = concat!("^", one_line_char!(), "*", non_blank_char!(), one_line_char!(), "*$");
/// Pattern of a multi-line text that is not blank (reasons, comments).
pub const MULTI_LINE_TEXT_PATTERN: &str =
    concat!("^", multi_line_char!(), "*", non_blank_char!(), multi_line_char!(), "*$");
/// Pattern of a multi-line text that may be blank (addresses, notes).
pub const PLAIN_TEXT_PATTERN: &str = concat!("^", multi_line_char!(), "*$");

/// OpenAPI schema of a text field: `pattern`, at most `max` characters, `min_length` 1 when it
/// must not be blank; `null` allowed when `nullable`.
fn text_schema(pattern: &str, max: Option<usize>, nullable: bool) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let ty = if nullable { SchemaType::from_iter([Type::String, Type::Null]) } else { SchemaType::new(Type::String) };
    let blank_ok = pattern == PLAIN_TEXT_PATTERN;
    ObjectBuilder::new()
        .schema_type(ty)
        .min_length((!blank_ok).then_some(1))
        .max_length(max)
        .pattern(Some(pattern))
        .build()
}

/// Schema of a one-line, non-blank text of at most `MAX` characters ([`check_text`]); use with
/// `#[schema(schema_with = one_line_text::<MAX>)]`.
pub fn one_line_text<const MAX: usize>() -> utoipa::openapi::schema::Object {
    text_schema(ONE_LINE_TEXT_PATTERN, Some(MAX), false)
}

/// [`one_line_text`] of an optional field (`null` or absent allowed).
pub fn optional_one_line_text<const MAX: usize>() -> utoipa::openapi::schema::Object {
    text_schema(ONE_LINE_TEXT_PATTERN, Some(MAX), true)
}

/// Schema of a multi-line, non-blank text of at most `MAX` characters (a reason).
pub fn multi_line_text<const MAX: usize>() -> utoipa::openapi::schema::Object {
    text_schema(MULTI_LINE_TEXT_PATTERN, Some(MAX), false)
}

/// Schema of an optional multi-line text that may be blank (an address).
pub fn optional_plain_text() -> utoipa::openapi::schema::Object {
    text_schema(PLAIN_TEXT_PATTERN, None, true)
}

/// [`optional_plain_text`] of at most `MAX` characters (a note).
pub fn optional_plain_text_up_to<const MAX: usize>() -> utoipa::openapi::schema::Object {
    text_schema(PLAIN_TEXT_PATTERN, Some(MAX), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_but_line_breaks_in_multi_line_text() {
        for bad in ["a\0b", "\x1b[31mred", "bell\x07", "del\x7f", "c1\u{85}", "c1\u{9f}"] {
            assert!(control_character(bad, Lines::Many).is_some(), "{bad:?}");
            assert!(control_character(bad, Lines::One).is_some(), "{bad:?}");
        }
        for breaks in ["two\nlines", "tab\there", "crlf\r\n"] {
            assert_eq!(control_character(breaks, Lines::Many), None, "{breaks:?}");
            assert!(control_character(breaks, Lines::One).is_some(), "{breaks:?}");
        }
        assert_eq!(control_character("北京 Café – ok ✓", Lines::One), None);
        let mut e = Vec::new();
        check_text("name", "Hall\u{1}", 200, &mut e);
        assert_eq!(
            (e[0].field.as_str(), e[0].reason.as_str()),
            ("name", "must not contain control characters (found U+0001)")
        );
    }

    #[test]
    fn lat_lon_rejects_out_of_range_nan_and_null_island() {
        let mut e = Vec::new();
        check_lat_lon(39.9, 116.4, &mut e);
        assert!(e.is_empty());
        check_lat_lon(91.0, 0.5, &mut e);
        check_lat_lon(f64::NAN, 10.0, &mut e);
        check_lat_lon(10.0, -180.5, &mut e);
        check_lat_lon(0.0, 0.0, &mut e);
        let fields: Vec<_> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["lat", "lat", "lon", "lat"]);
    }
}
