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

/// Checks that a text field is present and not blank, and not longer than `max` characters.
pub fn check_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be blank"));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(field, format!("must be at most {max} characters")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
