//! The layering of docs/architecture.md, checked on the source tree so that it cannot erode
//! unnoticed: the domain crate depends on no I/O crate, SQL is written only in the data layer,
//! and HTTP handlers stay thin.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, with its path relative to the repository root.
fn rust_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root()).expect("under the root").to_string_lossy().into_owned();
                out.push((rel, std::fs::read_to_string(&path).expect("readable source")));
            }
        }
    }
    out.sort();
    out
}

/// The dependency names of a `[dependencies]` table of a Cargo.toml (not dev-dependencies).
fn dependencies(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| l.split_once('=').map(|(name, _)| name.trim().to_owned()))
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .collect()
}

#[test]
fn the_domain_crate_depends_on_no_io_crate() {
    let manifest = std::fs::read_to_string(root().join("crates/fieldvisit-domain/Cargo.toml")).expect("manifest");
    let deps = dependencies(&manifest);
    assert!(deps.iter().any(|d| d == "chrono"), "the manifest was read: {deps:?}");
    let io = ["sqlx", "tokio", "axum", "hyper", "reqwest", "tower", "tower-http", "tracing", "tempfile", "image"];
    let found: Vec<_> = deps.iter().filter(|d| io.contains(&d.as_str())).collect();
    assert!(found.is_empty(), "the domain crate depends on {found:?}");
    // Nor does its code reach the file system, the network or the clock by the standard library.
    for (path, text) in rust_files(&root().join("crates/fieldvisit-domain/src")) {
        let code: String = text.split("#[cfg(test)]").next().unwrap_or_default().to_owned();
        for io in ["std::fs", "std::net", "std::process", "Utc::now", "SystemTime::now"] {
            assert!(!code.contains(io), "{path} uses {io}");
        }
    }
}

/// Lines that state SQL: a query call, or a string literal opening with a statement keyword.
fn sql_lines(text: &str) -> Vec<String> {
    let calls = ["sqlx::query", "query_as(", "query_as::<", "query_scalar(", "query_scalar::<", "raw_sql(", "query!("];
    let keywords = ["\"SELECT ", "\"INSERT ", "\"UPDATE ", "\"DELETE ", "\"WITH ", "\"LISTEN ", "\"NOTIFY "];
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .filter(|l| calls.iter().any(|c| l.contains(c)) || keywords.iter().any(|k| l.to_ascii_uppercase().contains(k)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn sql_is_written_only_in_the_data_layer() {
    let mut outside = Vec::new();
    for dir in ["src", "crates"] {
        for (path, text) in rust_files(&root().join(dir)) {
            if path.starts_with("src/db/") {
                continue;
            }
            outside.extend(sql_lines(&text).into_iter().map(|l| format!("{path}: {l}")));
        }
    }
    assert!(outside.is_empty(), "SQL outside src/db/:\n{}", outside.join("\n"));
    // The check sees SQL where there is some.
    assert!(!sql_lines(&std::fs::read_to_string(root().join("src/db/audit.rs")).expect("db/audit.rs")).is_empty());
}

/// The HTTP handlers (async functions of src/http/ taking axum extractors: the state or a
/// permission) longer than `max` lines, as `file::name (lines)`.
fn long_handlers(max: usize) -> Vec<String> {
    let mut long = Vec::new();
    for (path, text) in rust_files(&root().join("src/http")) {
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let signature_end = (i..lines.len()).find(|&j| lines[j].ends_with('{')).unwrap_or(i);
            let signature = lines[i..=signature_end].concat();
            let extracts = signature.contains("State(") || signature.contains(": Can<");
            if let Some(rest) = lines[i].strip_prefix("async fn ")
                && extracts
            {
                let name = rest.split(['(', '<']).next().unwrap_or_default();
                let end = (i..lines.len()).find(|&j| lines[j] == "}").unwrap_or(lines.len());
                if end - i + 1 > max {
                    let file = path.trim_start_matches("src/http/").trim_end_matches(".rs");
                    long.push(format!("{file}::{name} ({})", end - i + 1));
                }
                i = end;
            }
            i += 1;
        }
    }
    long
}

#[test]
fn handlers_stay_thin() {
    let long = long_handlers(42);
    assert!(long.is_empty(), "handlers over 42 lines (parse, authorise, call one use case, render): {long:?}");
    // The check finds handlers: a bound of a few lines flags most of them.
    assert!(long_handlers(5).len() > 50, "handlers found: {}", long_handlers(5).len());
}
