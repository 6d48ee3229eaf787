//! Visit checklists: an org's questions for a visit (display check, SIM stock, equipment working,
//! competitor present...) with typed answers, the check of a rep's answers against the checklist
//! version they were given for, the problems an answer records, and the outlet attributes it sets.
//!
//! A checklist's items, as JSON: `{"key": "sim_stock", "label": "SIM stock count", "type":
//! "number", "required": true, "integer": true, "min": 0, "max": 100000, "expect_min": 10,
//! "outlet_attribute": "sim_stock"}`. Types: `yes_no` (`expect`: the answer that is not a
//! problem), `number` (`integer`, `min`, `max`; `expect_min`/`expect_max`: the range that is not
//! a problem), `choice` (`choices`, `multiple`; `expect_in`: the choices that are not a problem),
//! `text` (`max_length`, default 1000). An answer outside `expect*` is a *problem* (the outlet is
//! then due for attention, see reminders); `outlet_attribute` copies the answer into the outlet's
//! attributes.

use super::validation::{FieldError, Lines, check_plain_text, control_character, control_character_reason};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Most items a checklist may have.
pub const MAX_ITEMS: usize = 100;
/// Longest text answer allowed when an item does not say.
pub const DEFAULT_TEXT_MAX: usize = 1000;

/// What kind of answer an item takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ItemKind {
    YesNo {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<bool>,
    },
    Number {
        #[serde(default)]
        integer: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_max: Option<f64>,
    },
    Choice {
        choices: Vec<String>,
        #[serde(default)]
        multiple: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_in: Option<Vec<String>>,
    },
    Text {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_length: Option<usize>,
    },
}

/// One question of a checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Item {
    /// Identifier of the answer (`[a-z0-9_]`, at most 64 characters).
    #[schema(pattern = "^[a-z0-9_]{1,64}$")]
    pub key: String,
    #[schema(schema_with = crate::validation::one_line_text::<200>)]
    pub label: String,
    #[serde(flatten)]
    pub kind: ItemKind,
    #[serde(default)]
    pub required: bool,
    /// The outlet attribute the answer is copied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9_]{1,64}$")]
    pub outlet_attribute: Option<String>,
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Reads and checks a checklist's items (every problem named by `items[i].field`).
pub fn parse_items(v: &Value) -> Result<Vec<Item>, Vec<FieldError>> {
    let Some(raw) = v.as_array() else {
        return Err(vec![FieldError::new("items", "must be a list of items")]);
    };
    let mut errors = Vec::new();
    if raw.is_empty() || raw.len() > MAX_ITEMS {
        errors.push(FieldError::new("items", format!("must hold 1 to {MAX_ITEMS} items")));
    }
    let mut items = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for (i, r) in raw.iter().enumerate() {
        let at = |field: &str| format!("items[{i}].{field}");
        let item: Item = match serde_json::from_value(r.clone()) {
            Ok(item) => item,
            Err(e) => {
                errors.push(FieldError::new(format!("items[{i}]"), format!("not a checklist item: {}", short(&e))));
                continue;
            }
        };
        if !is_identifier(&item.key) {
            errors.push(FieldError::new(at("key"), "must be 1-64 characters of a-z, 0-9 and _"));
        } else if !keys.insert(item.key.clone()) {
            errors.push(FieldError::new(at("key"), format!("`{}` is used by another item", item.key)));
        }
        if item.label.trim().is_empty() || item.label.chars().count() > 200 {
            errors.push(FieldError::new(at("label"), "must be a non-blank text of at most 200 characters"));
        }
        check_plain_text(&at("label"), &item.label, Lines::One, &mut errors);
        if item.outlet_attribute.as_deref().is_some_and(|a| !is_identifier(a)) {
            errors.push(FieldError::new(at("outlet_attribute"), "must be 1-64 characters of a-z, 0-9 and _"));
        }
        match &item.kind {
            ItemKind::Number { min, max, expect_min, expect_max, .. } => {
                let finite = [min, max, expect_min, expect_max].iter().all(|v| v.is_none_or(f64::is_finite));
                if !finite {
                    errors.push(FieldError::new(format!("items[{i}]"), "bounds must be finite numbers"));
                }
                if let (Some(lo), Some(hi)) = (min, max) {
                    if lo > hi {
                        errors.push(FieldError::new(at("min"), "must not exceed max"));
                    }
                }
            }
            ItemKind::Choice { choices, expect_in, .. } => {
                let distinct: std::collections::HashSet<&String> = choices.iter().collect();
                if choices.is_empty() || distinct.len() != choices.len() || choices.iter().any(|c| c.trim().is_empty())
                {
                    errors.push(FieldError::new(at("choices"), "must be a list of distinct, non-blank choices"));
                }
                if let Some(bad) = expect_in.iter().flatten().find(|c| !choices.contains(c)) {
                    errors.push(FieldError::new(at("expect_in"), format!("`{bad}` is not one of the choices")));
                }
            }
            ItemKind::Text { max_length: Some(0) } => {
                errors.push(FieldError::new(at("max_length"), "must be at least 1"));
            }
            ItemKind::YesNo { .. } | ItemKind::Text { .. } => {}
        }
        items.push(item);
    }
    if errors.is_empty() { Ok(items) } else { Err(errors) }
}

/// Checks answers (an object by item key) against a checklist's items: every wrong or missing
/// answer, and every answer to no item, is named (`answers.<key>`). Returns the answers kept
/// (numbers as given, choices as lists when `multiple`).
pub fn check_answers(items: &[Item], answers: &Value) -> Result<Map<String, Value>, Vec<FieldError>> {
    let Some(given) = answers.as_object() else {
        return Err(vec![FieldError::new("answers", "must be an object of answers by item key")]);
    };
    let mut errors = Vec::new();
    for key in given.keys().filter(|k| !items.iter().any(|i| &i.key == *k)) {
        let key: String = key.chars().take(64).collect();
        errors.push(FieldError::new(format!("answers.{key}"), "is not an item of this checklist version"));
    }
    let mut kept = Map::new();
    for item in items {
        let field = format!("answers.{}", item.key);
        let value = match given.get(&item.key) {
            None | Some(Value::Null) => {
                if item.required {
                    errors.push(FieldError::new(field, "is required"));
                }
                continue;
            }
            Some(v) => v,
        };
        match check_one(&item.kind, value) {
            Ok(()) => {
                kept.insert(item.key.clone(), value.clone());
            }
            Err(reason) => errors.push(FieldError::new(field, reason)),
        }
    }
    if errors.is_empty() { Ok(kept) } else { Err(errors) }
}

fn check_one(kind: &ItemKind, v: &Value) -> Result<(), String> {
    match kind {
        ItemKind::YesNo { .. } => v.as_bool().map(|_| ()).ok_or_else(|| "must be true or false".to_owned()),
        ItemKind::Number { integer, min, max, .. } => {
            let n = v.as_f64().filter(|n| n.is_finite()).ok_or_else(|| "must be a number".to_owned())?;
            if *integer && n.fract() != 0.0 {
                return Err("must be a whole number".to_owned());
            }
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                let lo = min.map_or_else(|| "-inf".to_owned(), |m| m.to_string());
                let hi = max.map_or_else(|| "inf".to_owned(), |m| m.to_string());
                return Err(format!("must be from {lo} to {hi}"));
            }
            Ok(())
        }
        ItemKind::Choice { choices, multiple, .. } => {
            let picked: Vec<&str> = match (v, multiple) {
                (Value::String(s), false) => vec![s.as_str()],
                (Value::Array(a), true) => {
                    a.iter().map(Value::as_str).collect::<Option<Vec<_>>>().ok_or("must be a list of choices")?
                }
                (_, false) => return Err(format!("must be one of: {}", choices.join(", "))),
                (_, true) => return Err("must be a list of choices".to_owned()),
            };
            match picked.iter().find(|p| !choices.iter().any(|c| c == *p)) {
                Some(bad) => Err(format!("`{bad}` is not one of: {}", choices.join(", "))),
                None => Ok(()),
            }
        }
        ItemKind::Text { max_length } => {
            let s = v.as_str().ok_or_else(|| "must be a text".to_owned())?;
            let max = max_length.unwrap_or(DEFAULT_TEXT_MAX);
            if let Some(c) = control_character(s, Lines::Many) {
                return Err(control_character_reason(c));
            }
            if s.chars().count() > max { Err(format!("must be at most {max} characters")) } else { Ok(()) }
        }
    }
}

/// The keys of the (checked) answers that record a problem (outside the item's `expect*`).
pub fn problems(items: &[Item], answers: &Map<String, Value>) -> Vec<String> {
    items
        .iter()
        .filter(|item| {
            let Some(v) = answers.get(&item.key) else { return false };
            match &item.kind {
                ItemKind::YesNo { expect: Some(e) } => v.as_bool() != Some(*e),
                ItemKind::Number { expect_min, expect_max, .. } => {
                    // Checked answers are finite numbers.
                    let n = v.as_f64().unwrap_or_default();
                    expect_min.is_some_and(|m| n < m) || expect_max.is_some_and(|m| n > m)
                }
                ItemKind::Choice { expect_in: Some(ok), .. } => {
                    let picked: Vec<&str> = match v {
                        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                        other => other.as_str().into_iter().collect(),
                    };
                    picked.iter().any(|p| !ok.iter().any(|o| o == p))
                }
                _ => false,
            }
        })
        .map(|item| item.key.clone())
        .collect()
}

/// The outlet attributes the answers set: (attribute, answer).
pub fn outlet_attributes(items: &[Item], answers: &Map<String, Value>) -> Vec<(String, Value)> {
    items.iter().filter_map(|i| Some((i.outlet_attribute.clone()?, answers.get(&i.key)?.clone()))).collect()
}

/// A decoder's message cut to 200 characters: serde quotes the offending value, which may be
/// megabytes long, and an error must not echo a whole input.
fn short(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checklist() -> Vec<Item> {
        parse_items(&json!([
            {"key": "display_ok", "label": "Display check", "type": "yes_no", "required": true, "expect": true},
            {"key": "sim_stock", "label": "SIM stock count", "type": "number", "integer": true, "min": 0,
             "max": 100_000, "expect_min": 10, "outlet_attribute": "sim_stock"},
            {"key": "competitor", "label": "Competitor present", "type": "choice",
             "choices": ["none", "mtn", "airtel"], "expect_in": ["none"]},
            {"key": "materials", "label": "Promotional material", "type": "choice", "multiple": true,
             "choices": ["poster", "banner", "shelf"]},
            {"key": "remarks", "label": "Remarks", "type": "text", "max_length": 20}
        ]))
        .expect("a valid checklist")
    }

    #[test]
    fn good_answers_are_kept_and_their_problems_found() {
        let items = checklist();
        let answers = json!({"display_ok": false, "sim_stock": 4, "competitor": "mtn", "materials": ["poster"],
                             "remarks": "ok"});
        let kept = check_answers(&items, &answers).expect("valid answers");
        assert_eq!(kept.len(), 5);
        assert_eq!(problems(&items, &kept), ["display_ok", "sim_stock", "competitor"]);
        assert_eq!(outlet_attributes(&items, &kept), [("sim_stock".to_owned(), json!(4))]);
        let fine = check_answers(&items, &json!({"display_ok": true, "sim_stock": 50})).expect("valid");
        assert!(problems(&items, &fine).is_empty());
    }

    #[test]
    fn wrong_answers_are_named_item_by_item() {
        let items = checklist();
        let answers = json!({"sim_stock": "many", "competitor": "vodafone", "materials": "poster",
                             "remarks": "far too long for this field", "colour": "red"});
        let errors = check_answers(&items, &answers).expect_err("invalid");
        let named: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.reason.as_str())).collect();
        assert_eq!(
            named,
            [
                ("answers.colour", "is not an item of this checklist version"),
                ("answers.display_ok", "is required"),
                ("answers.sim_stock", "must be a number"),
                ("answers.competitor", "`vodafone` is not one of: none, mtn, airtel"),
                ("answers.materials", "must be a list of choices"),
                ("answers.remarks", "must be at most 20 characters"),
            ]
        );
        let e = check_answers(&items, &json!({"display_ok": "yes", "sim_stock": 2.5})).expect_err("invalid");
        assert_eq!(e[0].reason, "must be true or false");
        assert_eq!(e[1].reason, "must be a whole number");
        let e = check_answers(&items, &json!({"display_ok": true, "sim_stock": -1})).expect_err("invalid");
        assert_eq!(e[0].reason, "must be from 0 to 100000");
        assert!(check_answers(&items, &json!([1, 2])).is_err());
    }

    #[test]
    fn a_bad_checklist_is_refused_with_every_problem() {
        let errors = parse_items(&json!([
            {"key": "Bad Key", "label": "x", "type": "yes_no"},
            {"key": "a", "label": "", "type": "number", "min": 5, "max": 1},
            {"key": "a", "label": "dup", "type": "choice", "choices": [], "expect_in": ["z"]},
            {"key": "b", "label": "b", "type": "colour"}
        ]))
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "items[0].key",
                "items[1].label",
                "items[1].min",
                "items[2].key",
                "items[2].choices",
                "items[2].expect_in",
                "items[3]"
            ]
        );
        assert!(parse_items(&json!([])).is_err());
        assert!(parse_items(&json!({"key": "x"})).is_err());
    }
}
