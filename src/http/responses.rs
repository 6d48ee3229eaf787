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
    describe_all_rules(openapi);
    let components = openapi.components.get_or_insert_with(Default::default);
    for shared in SHARED {
        components.responses.entry(name(shared.status)).or_insert_with(|| problem_response(shared.description).into());
    }
    // Only what a client sends is bounded: an answer may name a date outside the range (the
    // month before 2000-01 of an assessment).
    let inputs = input_schemas(&openapi.paths, &components.schemas);
    for (name, schema) in &mut components.schemas {
        if inputs.contains(name) {
            bound_dates(schema);
        }
    }
    for (path, item) in &mut openapi.paths.paths {
        for op in operations(item) {
            for param in op.parameters.iter_mut().flatten() {
                if let Some(schema) = &mut param.schema {
                    bound_dates(schema);
                    pattern_by_name(&param.name, schema);
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

/// A period of local days: `to` not before `from`, at most 93 days (`visits::days`).
const PERIOD_RULE: &str = "`to` must not be before `from`, and the period covers at most 93 days \
    (a `from` or `to` left out takes its default, so one far date alone can break it)";
/// Referential rules: what an id names must exist in the caller's org and scope.
const EXISTS_RULE: &str = "every id given (rep, territory, outlet, tier, device) must name one that exists \
    in your org and scope";

/// The rules of each operation that JSON Schema cannot express, added to its description: these
/// operations, and only these, are left out of Schemathesis's `positive_data_acceptance` check
/// (schemathesis.toml lists them with the same reasons; `docs::` checks the two agree).
pub(super) const RULES: &[(&str, &str, &str)] = &[
    ("get", "/api/v1/checkins/claims", PERIOD_RULE),
    ("get", "/api/v1/layers/coverage", PERIOD_RULE),
    ("get", "/api/v1/layers/outlets", PERIOD_RULE),
    ("get", "/api/v1/layers/visits", PERIOD_RULE),
    ("get", "/api/v1/outlets/{id}/visits", PERIOD_RULE),
    ("get", "/api/v1/reps/{id}/checkins", PERIOD_RULE),
    ("get", "/api/v1/reps/{id}/compliance", PERIOD_RULE),
    ("get", "/api/v1/reps/{id}/visits", PERIOD_RULE),
    ("get", "/api/v1/territories/{id}/compliance", PERIOD_RULE),
    ("get", "/api/v1/territories/{id}/coverage", PERIOD_RULE),
    ("get", "/api/v1/territories/{id}/outlet-frequency", PERIOD_RULE),
    ("get", "/api/v1/territories/{id}/outlet-status", PERIOD_RULE),
    ("get", "/api/v1/reviews/queue", PERIOD_RULE),
    ("post", "/api/v1/visits/recompute", "`to` must not be before `from`, and the period covers at most 366 days"),
    ("get", "/api/v1/reps/{id}/pings", "give `from` and `to` together (`from` before `to`), or `date`"),
    ("get", "/api/v1/reps/{id}/track", "give `from` and `to` together (`from` before `to`), or `date`"),
    ("get", "/api/v1/layers/routes", "`bbox`: `min_lat <= max_lat`"),
    ("get", "/api/v1/layers/territories", "`bbox`: `min_lat <= max_lat`"),
    ("get", "/api/v1/layers/tracks", "`bbox`: `min_lat <= max_lat`"),
    ("get", "/api/v1/outlets", "`bbox`: `min_lat <= max_lat`"),
    ("delete", "/api/v1/plans/{id}", "`from` must be today or later (the past is kept)"),
    ("get", "/api/v1/outlets/in-cell/{h3}", "`h3` must be a valid H3 cell index (mode, base cell and digits)"),
    ("get", "/api/v1/outlets/in-territory/{id}", "the territory must have a boundary"),
    ("get", "/api/v1/reps/{id}/plan-proposal", "give `start_lat` and `start_lon` together, or neither"),
    (
        "post",
        "/api/v1/beats/proposals",
        "give `rep_id` or `territory_id` (a territory with an active rep); `cycle_weeks` 1-12, `max_seconds` 1-60, \
        `day_start`/`day_end` as HH:MM with the end after the start; at most 10,000 active outlets",
    ),
    (
        "post",
        "/api/v1/beats/day-order",
        "1-200 stops, each an outlet of the rep's territory once, `window_end` after `window_start`; \
        `max_seconds` 1-10; the rep must be in your scope",
    ),
    ("get", "/api/v1/plans", EXISTS_RULE),
    ("get", "/api/v1/reps/{id}/reminders", "`territory_id` must be the rep's territory or below it"),
    ("patch", "/api/v1/devices/{id}", EXISTS_RULE),
    ("patch", "/api/v1/outlets/{id}", EXISTS_RULE),
    ("patch", "/api/v1/users/{id}", EXISTS_RULE),
    ("post", "/api/v1/reviews/bulk", "give `items` or `filter`, not both; the filter's period covers at most 93 days"),
    ("post", "/api/v1/devices", EXISTS_RULE),
    ("post", "/api/v1/exports", "the scope must exist in your scope; `to` not before `from`; each format at most once"),
    ("post", "/api/v1/outlets", "the tier and territory must exist in your org and scope; the position is not (0, 0)"),
    (
        "post",
        "/api/v1/plans",
        "the rep and outlets must exist in your scope; each item is recurring (`weekday`) or dated \
        (`visit_date`, within the plan's validity), `week_of_cycle` at most `cycle_weeks`, `window_end` after \
        `window_start`; `valid_to` not before `valid_from`",
    ),
    (
        "put",
        "/api/v1/plans/{id}",
        "the outlets must exist in your scope; each item is recurring (`weekday`) or dated \
        (`visit_date`, within the plan's validity and from the revision's first day), `window_end` after `window_start`",
    ),
    ("post", "/api/v1/territories", EXISTS_RULE),
    ("post", "/api/v1/users", EXISTS_RULE),
    ("put", "/api/v1/users/{id}/privacy", "the home is not (0, 0); working hours start before they end"),
    (
        "post",
        "/api/v1/checklists",
        "item keys are distinct; a number item's `min <= max`; a choice item's choices are \
        distinct and not blank, `expect_in` among them",
    ),
    (
        "put",
        "/api/v1/settings/pings",
        "working hours start before they end; `working_hours_only` needs `working_hours`",
    ),
    ("post", "/api/v1/devices/{id}/gpx", "the body is a GPX 1.0/1.1 document"),
    (
        "post",
        "/api/v1/outlets/import",
        "each row (CSV with a header naming the columns, or GeoJSON Point feature) is a valid \
        outlet of your org's tiers and territories",
    ),
    (
        "post",
        "/api/v1/territories/import",
        "each feature is a Polygon/MultiPolygon with a valid `code`, `name`, `level` and \
        a `parent_code` stored or in the file",
    ),
    ("post", "/api/v1/outlets/{id}/photos", "`photo` is a JPEG, PNG or HEIC picture"),
    ("post", "/api/v1/visits/{id}/photos", "`photo` is a JPEG, PNG or HEIC picture"),
    (
        "put",
        "/api/v1/checkins/{client_id}/photos/{photo_client_id}",
        "`photo` is a JPEG, PNG or HEIC picture; \
        `lat` and `lon` together",
    ),
];

/// Adds the operation's [`RULES`] to its description.
fn describe_rules(method: &str, path: &str, op: &mut Operation) {
    let rules: Vec<&str> =
        RULES.iter().filter(|(m, p, _)| *m == method && *p == path).map(|(_, _, rule)| *rule).collect();
    if rules.is_empty() {
        return;
    }
    let text = format!("Rules the schema cannot express: {}.", rules.join("; "));
    op.description = Some(match op.description.take() {
        Some(d) if !d.is_empty() => format!("{d}\n\n{text}"),
        _ => text,
    });
}

/// Names of the component schemas a request body refers to, directly or through other schemas.
fn input_schemas(
    paths: &utoipa::openapi::path::Paths,
    schemas: &std::collections::BTreeMap<String, RefOr<Schema>>,
) -> std::collections::BTreeSet<String> {
    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(name) = map.get("$ref").and_then(|r| r.as_str()?.strip_prefix("#/components/schemas/")) {
                    out.push(name.to_owned());
                }
                map.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut todo = Vec::new();
    for item in paths.paths.values() {
        for op in [&item.get, &item.put, &item.post, &item.delete, &item.patch].into_iter().flatten() {
            refs(&serde_json::to_value(&op.request_body).unwrap_or_default(), &mut todo);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = todo.pop() {
        if let Some(schema) = schemas.get(&name)
            && seen.insert(name)
        {
            refs(&serde_json::to_value(schema).unwrap_or_default(), &mut todo);
        }
    }
    seen
}

/// The rules of [`RULES`] in the descriptions of their operations.
fn describe_all_rules(openapi: &mut OpenApi) {
    for (path, item) in &mut openapi.paths.paths {
        let methods = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, op) in methods {
            if let Some(op) = op {
                describe_rules(method, path, op);
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
/// so the years are bounded by a pattern (months and days too, so that a generator's dates are
/// nearly all real ones).
const DATE_PATTERN: &str = "^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

/// A longitude in degrees, -180 to 180, as the parameters below write it.
macro_rules! lon {
    () => {
        r"-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?)"
    };
}
/// A latitude in degrees, -90 to 90.
macro_rules! lat {
    () => {
        r"-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?)"
    };
}

/// The text parameters the server parses, by name, with the pattern of what it reads: the
/// degree ranges are in the pattern; a rule across parts (`min_lat <= max_lat`) is in the
/// operation's description.
const PARAM_PATTERNS: &[(&str, &str)] = &[
    // `min_lon,min_lat,max_lon,max_lat` (`domain::layers::parse_bbox`).
    ("bbox", concat!("^", lon!(), ",", lat!(), ",", lon!(), ",", lat!(), "$")),
    // `lat,lon` (`outlets::parse_near`).
    ("near", concat!("^", lat!(), ",", lon!(), "$")),
    // `YYYY-MM`, 2000-01 to 2100-12 (`domain::assessment::parse_month`).
    ("month", "^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$"),
    // The app's own ids of evidence (`domain::checkin::valid_client_id`).
    ("client_id", CLIENT_ID_PATTERN),
    ("photo_client_id", CLIENT_ID_PATTERN),
    ("answers_client_id", CLIENT_ID_PATTERN),
    // An H3 cell index in hexadecimal (its mode and resolution: the operation's description).
    ("h3", "^8[0-9a-fA-F]{14}$"),
];

/// 8-100 letters, digits or `_ . : -`.
const CLIENT_ID_PATTERN: &str = "^[A-Za-z0-9_.:-]{8,100}$";

fn pattern_by_name(name: &str, schema: &mut RefOr<Schema>) {
    let Some((_, pattern)) = PARAM_PATTERNS.iter().find(|(n, _)| *n == name) else { return };
    if let RefOr::T(Schema::Object(o)) = schema
        && o.pattern.is_none()
    {
        o.pattern = Some((*pattern).to_owned());
    }
}

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

    /// schemathesis.toml turns `positive_data_acceptance` off for exactly the operations whose
    /// rules the schema cannot express, and every such operation's description states them.
    #[test]
    fn positive_data_exclusions_are_the_described_rules() {
        let toml = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml"));
        let mut excluded: Vec<String> = toml
            .split("[[operations]]")
            .map(|block| block.split("\n\n").next().unwrap_or_default())
            .filter(|block| block.contains("checks.positive_data_acceptance.enabled = false"))
            .flat_map(|block| block.split('"').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>())
            .collect();
        excluded.sort();
        let mut described: Vec<String> =
            RULES.iter().map(|(m, p, _)| format!("{} {p}", m.to_ascii_uppercase())).collect();
        described.sort();
        assert_eq!(excluded, described);
        let doc = crate::http::openapi();
        for (method, path, rule) in RULES {
            let item = doc.paths.paths.get(*path).unwrap_or_else(|| panic!("{path} is not in the document"));
            let op = match *method {
                "get" => &item.get,
                "put" => &item.put,
                "post" => &item.post,
                "delete" => &item.delete,
                _ => &item.patch,
            };
            let description = op.as_ref().and_then(|o| o.description.as_deref()).unwrap_or_default();
            assert!(description.contains(rule), "{method} {path}: the description does not state `{rule}`");
        }
    }

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
