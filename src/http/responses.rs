//! The error responses every operation can give, declared in the OpenAPI document in one place
//! rather than repeated on each handler: problem+json for every 4xx/5xx, and the statuses the
//! shared layers answer before or around a handler (authentication, extractors, body limits,
//! rate limits, overload). Handlers still declare the statuses of their own rules (404, 409, 422…).

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ArrayItems, KnownFormat, Schema, SchemaFormat};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr};

/// Media type of every error body (see [`super::error::PROBLEM_JSON`]).
const PROBLEM: &str = super::error::PROBLEM_JSON;

/// What a shared layer can answer, and to which operations.
struct Shared {
    status: &'static str,
    description: &'static str,
    applies: fn(&Operation, &str) -> bool,
}

fn authenticated(op: &Operation) -> bool {
    // `security(())` (an empty requirement) marks a public operation.
    op.security.as_ref().is_none_or(|reqs| reqs.iter().any(|r| r != &SecurityRequirement::default()))
}

fn has_path_params(op: &Operation) -> bool {
    op.parameters.iter().flatten().any(|p| p.parameter_in == ParameterIn::Path)
}

fn has_input(op: &Operation) -> bool {
    op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty())
}

fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

const SHARED: &[Shared] = &[
    Shared {
        status: "400",
        description: "Malformed input: a path or query parameter of the wrong type, or a body that is not JSON",
        applies: |op, _| has_input(op),
    },
    Shared {
        status: "401",
        description: "Missing, unknown, expired or revoked credential",
        applies: |op, _| authenticated(op),
    },
    Shared {
        status: "403",
        description: "The caller's role or territory does not allow this",
        applies: |op, _| authenticated(op),
    },
    Shared { status: "404", description: "No such resource in the caller's org", applies: |op, _| has_path_params(op) },
    Shared {
        status: "413",
        description: "The request body is larger than this route's limit",
        applies: |op, _| op.request_body.is_some(),
    },
    Shared {
        status: "415",
        description: "The request body's content type is not one this route reads",
        applies: |op, _| op.request_body.is_some(),
    },
    Shared {
        status: "422",
        description: "Well-formed input that breaks a rule; `errors` names each field",
        applies: |op, _| has_input(op),
    },
    Shared {
        status: "500",
        description: "Internal error; the request id identifies it in the server log",
        applies: |_, _| true,
    },
    Shared {
        status: "503",
        description: "The database is unavailable, overloaded or took too long to answer; retry after \
                      `Retry-After` seconds when given",
        applies: |_, path| !matches!(path, "/healthz" | "/metrics"),
    },
];

/// Makes the document say what the server does: every error response is problem+json, and each
/// operation lists the statuses the shared layers can answer (see [`SHARED`]).
pub fn declare_shared(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    for shared in SHARED {
        components.responses.entry(name(shared.status)).or_insert_with(|| problem_response(shared.description).into());
    }
    for schema in components.schemas.values_mut() {
        bound_dates(schema);
    }
    for (path, item) in &mut openapi.paths.paths {
        for op in operations(item) {
            for param in op.parameters.iter_mut().flatten() {
                if let Some(schema) = &mut param.schema {
                    bound_dates(schema);
                }
            }
            for (status, response) in &mut op.responses.responses {
                if let RefOr::T(response) = response {
                    if response.description.is_empty() {
                        response.description = reason(status);
                    }
                    problem_content(response);
                }
            }
            let error_codes: Vec<&str> = SHARED.iter().filter(|s| (s.applies)(op, path)).map(|s| s.status).collect();
            for status in error_codes {
                if status == "401" && is_probe(path) {
                    continue;
                }
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name(status))));
            }
        }
    }
}

/// The status's reason phrase ("Not Found"), for responses declared without a description.
fn reason(status: &str) -> String {
    status
        .parse::<u16>()
        .ok()
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Response")
        .to_owned()
}

fn name(status: &str) -> String {
    format!("Problem{status}")
}

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM, Content::new(Some(Ref::from_schema_name("Problem"))))
        .build()
}

/// An error response declared as `application/json` (utoipa's default for a body) is problem+json.
fn problem_content(response: &mut Response) {
    if let Some(content) = response.content.shift_remove("application/json") {
        if refers_to_problem(&content) {
            response.content.insert(PROBLEM.to_owned(), content);
        } else {
            response.content.insert("application/json".to_owned(), content);
        }
    }
}

fn refers_to_problem(content: &Content) -> bool {
    matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
}

/// Every calendar date the API reads lies in 2000-01-01..=2100-12-31 (`domain::plan::date_in_range`,
/// which keeps date arithmetic from overflowing); JSON Schema has no range for `format: date`,
/// so the years are bounded by a pattern.
const DATE_PATTERN: &str = "^(20[0-9]{2}|2100)-[0-9]{2}-[0-9]{2}$";

fn bound_dates(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(o) => {
            if matches!(o.format, Some(SchemaFormat::KnownFormat(KnownFormat::Date))) && o.pattern.is_none() {
                o.pattern = Some(DATE_PATTERN.to_owned());
            }
            o.properties.values_mut().for_each(bound_dates);
        }
        Schema::Array(a) => {
            if let ArrayItems::RefOrSchema(items) = &mut a.items {
                bound_dates(items);
            }
        }
        Schema::OneOf(one) => one.items.iter_mut().for_each(bound_dates),
        Schema::AllOf(all) => all.items.iter_mut().for_each(bound_dates),
        Schema::AnyOf(any) => any.items.iter_mut().for_each(bound_dates),
        _ => {}
    }
}

/// Every operation of a path.
pub(super) fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_response_is_problem_json_and_authenticated_operations_declare_401() {
        let mut doc = crate::http::openapi();
        let components = doc.components.take().expect("components");
        for (path, mut item) in doc.paths.paths {
            for op in operations(&mut item) {
                let id = format!("{path} {:?}", op.operation_id);
                for (status, response) in &op.responses.responses {
                    if status.as_str() < "400" {
                        continue;
                    }
                    let response = match response {
                        RefOr::T(r) => r,
                        RefOr::Ref(r) => {
                            let name = r.ref_location.rsplit('/').next().expect("name");
                            match &components.responses[name] {
                                RefOr::T(r) => r,
                                RefOr::Ref(_) => panic!("{id}: nested reference"),
                            }
                        }
                    };
                    let types: Vec<&String> = response.content.keys().collect();
                    assert_eq!(types, [PROBLEM], "{id} {status}");
                }
                if authenticated(op) && !is_probe(&path) {
                    assert!(op.responses.responses.contains_key("401"), "{id} does not declare 401");
                }
            }
        }
    }
}
