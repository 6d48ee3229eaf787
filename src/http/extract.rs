//! Axum extractors whose rejections are problem+json ([`ApiError`]) instead of plain text.

use super::error::ApiError;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// JSON body in, JSON body out. The body must be an object (or `null`). A number with a zero
/// fraction (`2.0`) is read as the integer it equals, as JSON Schema (and a client that writes
/// every number as a double) counts it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(mut value) = axum::Json::<Value>::from_request(req, state).await?;
        // Every request body of the API is an object (or `null` where the body is optional):
        // serde would read a struct of optional fields from an array (`[]`) by position.
        if !(value.is_object() || value.is_null()) {
            return Err(ApiError::field("body", "must be a JSON object"));
        }
        integral_numbers_as_integers(&mut value);
        serde_path_to_error::deserialize(value).map(Json).map_err(|e| ApiError::Unprocessable {
            detail: format!("Failed to deserialize the JSON body into the target type: {e}"),
            errors: Vec::new(),
        })
    }
}

/// Rewrites every float with a zero fraction that fits an `i64` as that integer (`-156.0` ->
/// `-156`), so an integer field takes it; a float field reads the integer just the same.
fn integral_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                // -2^63 and 2^63 are exact doubles: the range check is exact.
                if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                    *n = serde_json::Number::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers_as_integers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query string.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Path parameters.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Schema of an integer parameter from `MIN` to `MAX`: `#[param(schema_with = int_range::<1, { MAX }>)]`,
/// so the document's bounds are the very consts the handler checks.
pub fn int_range<const MIN: i64, const MAX: i64>() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(MIN as f64))
        .maximum(Some(MAX as f64))
        .build()
}

/// Schema of a number parameter greater than 0 and at most `MAX` (metres, seconds).
pub fn positive_up_to<const MAX: u32>() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .exclusive_minimum(Some(0.0))
        .maximum(Some(f64::from(MAX)))
        .build()
}

/// Cursor pagination parameters shared by every list.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items per page (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page's `next`.
    pub after: Option<i64>,
}

impl Page {
    pub const MAX: i64 = 1000;

    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(n) if (1..=Self::MAX).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::field("limit", format!("must be between 1 and {}", Self::MAX))),
        }
    }

    pub fn after(&self) -> i64 {
        self.after.unwrap_or(0)
    }
}

/// A page of a list: the items and the cursor of the next page, if there is one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

impl<T> Paged<T> {
    /// Builds a page from items fetched with `limit`, using `id` as the cursor.
    pub fn new(items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let next = if items.len() as i64 == limit { items.last().map(id) } else { None };
        Paged { items, next }
    }
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`), for PATCH.
#[allow(clippy::option_option)]
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
