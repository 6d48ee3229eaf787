//! The documentation against the binary: every setting and command `fieldvisit --help` lists is in
//! docs/operations.md, every `FV_` variable the docs name exists, and the README stays a short
//! door into docs/. Also the command line's refusals of unknown values and the deprecated `BIND`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `fieldvisit ARGS` with no database and no settings from the test's environment.
fn fieldvisit(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fieldvisit"));
    for (key, _) in std::env::vars() {
        if key.starts_with("FV_") || key == "BIND" || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).envs(env.iter().copied()).output().expect("fieldvisit runs")
}

fn help(args: &[&str]) -> String {
    let out = fieldvisit(args, &[]);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists under `Commands:` (without `help`).
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// The environment variables a help text names (`[env: NAME=...]`).
fn env_vars(help: &str) -> BTreeSet<String> {
    help.split("[env: ").skip(1).filter_map(|rest| rest.split(['=', ']']).next()).map(str::to_owned).collect()
}

/// Every word that looks like one of our variables (`FV_...`) in `text`.
fn fv_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .filter(|w| w.starts_with("FV_") && w.len() > 3)
        .map(str::to_owned)
        .collect()
}

/// Every source and script file of the repository, concatenated (where a variable may be read).
fn sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).expect("readable folder").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | "node_modules" | "dist" | ".git") && !name.starts_with("target")
                {
                    walk(&path, out);
                }
            } else if [".rs", ".sh", ".mjs", ".js", ".py"].iter().any(|ext| name.ends_with(ext)) || name == "Makefile" {
                out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut out = String::new();
    for dir in ["src", "crates", "scripts", "benches", "map-ui"] {
        walk(&root().join(dir), &mut out);
    }
    out.push_str(&read(&root().join("Makefile")));
    out
}

#[test]
fn every_setting_and_command_of_the_binary_is_documented() {
    let operations = read(&root().join("docs/operations.md"));
    let top = help(&["--help"]);

    let vars = env_vars(&top);
    assert!(vars.contains("FV_BIND") && vars.contains("DATABASE_URL"), "help lists the settings: {vars:?}");
    let missing: Vec<_> = vars.iter().filter(|v| !operations.contains(&format!("`{v}`"))).collect();
    assert!(missing.is_empty(), "docs/operations.md does not name {missing:?}");

    let mut undocumented = Vec::new();
    let top_commands = commands(&top);
    assert!(top_commands.len() >= 6, "help lists the commands: {top_commands:?}");
    for command in &top_commands {
        let sub_help = help(&[command, "--help"]);
        let subs = commands(&sub_help);
        let names: Vec<String> = if subs.is_empty() {
            vec![format!("fieldvisit {command}")]
        } else {
            subs.iter().map(|s| format!("fieldvisit {command} {s}")).collect()
        };
        undocumented.extend(names.into_iter().filter(|n| !operations.contains(n.as_str())));
    }
    assert!(undocumented.is_empty(), "docs/operations.md does not describe {undocumented:?}");
}

#[test]
fn every_variable_the_docs_name_exists() {
    let code = sources();
    let mut named = BTreeSet::new();
    for page in std::fs::read_dir(root().join("docs")).expect("docs/").flatten() {
        if page.path().extension().is_some_and(|e| e == "md") {
            named.extend(fv_names(&read(&page.path())));
        }
    }
    assert!(named.contains("FV_BIND"), "the docs name the settings: {named:?}");
    let unknown: Vec<_> = named.iter().filter(|n| !code.contains(n.as_str())).collect();
    assert!(unknown.is_empty(), "the docs name variables nothing reads: {unknown:?}");
}

#[test]
fn the_readme_is_a_short_door_into_docs() {
    let readme = read(&root().join("README.md"));
    assert!(readme.len() <= 6 * 1024, "README.md is {} bytes; the substance belongs in docs/", readme.len());
    let commands: Vec<&str> = readme.lines().filter(|l| l.starts_with("make ")).collect();
    assert!(
        commands.len() >= 2 && commands[0].starts_with("make run") && commands[1].starts_with("make test"),
        "README starts with make run and make test: {commands:?}"
    );
    for page in std::fs::read_dir(root().join("docs")).expect("docs/").flatten() {
        let name = page.file_name().to_string_lossy().into_owned();
        if page.path().extension().is_some_and(|e| e == "md") {
            assert!(readme.contains(&format!("(docs/{name})")), "README does not link docs/{name}");
        }
    }
    for link in ["(BENCHMARKS.md)", "(CHANGELOG.md)"] {
        assert!(readme.contains(link), "README does not link {link}");
    }
}

#[test]
fn an_unknown_choice_is_refused_with_the_accepted_values() {
    let out = fieldvisit(&["--log-format", "jsno", "migrate"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("invalid value 'jsno'") && err.contains("text") && err.contains("json"), "{err}");

    let out = fieldvisit(&["import", "outlets", "x.csv", "--org", "o", "--mode", "atomc"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("invalid value 'atomc'") && err.contains("partial"), "{err}");
}

#[test]
fn the_old_bind_variable_is_still_read_with_a_warning() {
    // No database: the command fails after the settings are read and the warning logged.
    let out = fieldvisit(&["migrate"], &[("BIND", "127.0.0.1:9")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BIND is deprecated") && err.contains("FV_BIND"), "{err}");

    let out = fieldvisit(&["migrate"], &[("BIND", "127.0.0.1:9"), ("FV_BIND", "127.0.0.1:10")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("deprecated"), "FV_BIND wins silently: {err}");

    let out = fieldvisit(&["migrate"], &[("BIND", "not an address")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'not an address'"));
}
