//! The shape of the code, checked: the layers import one way (nothing below the commands knows
//! the command line or the settings built from it; the registry knows no bundle and the bundle
//! never talks HTTP), no file under `src/` grows past 600 lines, and no two files import each
//! other. Read from the `use` lines and the `crate::`/`super::` paths of every source file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, relative, with its text.
fn sources() -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for item in std::fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(name, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &src(), &mut out);
    out
}

/// The module path of a file: `bundle/mod.rs` → `bundle`, `bundle/plan.rs` → `bundle::plan`.
fn module_of(file: &str) -> String {
    let trimmed = file.trim_end_matches(".rs");
    let trimmed = trimmed.strip_suffix("/mod").unwrap_or(trimmed);
    match trimmed {
        "lib" | "main" => String::new(),
        other => other.replace('/', "::"),
    }
}

/// The code of a file without its comments and its `#[cfg(test)]` module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules a file names, as paths from the crate root: `use crate::a::b`, `crate::a::b::f`,
/// `use super::x` and `super::x::y` (resolved against the file's own module).
fn named_modules(file: &str, code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let own = module_of(file);
    let is_mod_file = file.ends_with("mod.rs") || file == "lib.rs" || file == "main.rs";
    let parent = match own.rsplit_once("::") {
        Some((p, _)) => p.to_string(),
        None => String::new(),
    };
    // `super` in a mod.rs is the parent of its directory module; in a leaf file, its directory.
    let super_of = if is_mod_file { parent.clone() } else { parent };
    let mut found = BTreeSet::new();
    let expand = |path: &str| -> Option<String> {
        // The longest prefix of `path` that is a module of ours.
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|candidate| modules.contains(candidate))
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    for (prefix, base) in [("crate::", String::new()), ("super::", super_of.clone())] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            let path: String = after.chars().take_while(|c| ident(*c)).collect();
            let path = path.trim_end_matches(':');
            let full = if base.is_empty() {
                path.to_string()
            } else {
                format!("{base}::{path}")
            };
            if let Some(module) = expand(&full) {
                found.insert(module);
            }
            // `use crate::x::{a, b::c}`: the braces name modules of `x` too.
            if after[path.len()..].starts_with("::{") {
                let inner = &after[path.len() + 3..];
                let close = inner.find('}').unwrap_or(inner.len());
                for item in inner[..close].split(',') {
                    let item = item.trim().trim_start_matches("self");
                    let item: String = item.chars().take_while(|c| ident(*c)).collect();
                    if let Some(module) = expand(&format!("{full}::{item}")) {
                        found.insert(module);
                    }
                }
            }
            rest = &rest[at + prefix.len()..];
        }
    }
    found.remove(&own);
    found
}

#[test]
fn nothing_below_the_commands_knows_the_command_line() {
    let mut offenders = Vec::new();
    for (file, text) in sources() {
        let core = [
            "pull/",
            "push/",
            "serve/",
            "source/",
            "bundle/",
            "registry/",
            "imageset/",
            "trust/",
        ]
        .iter()
        .any(|d| file.starts_with(d));
        let code = code_of(&text);
        if core && (code.contains("crate::settings") || code.contains("crate::cli")) {
            offenders.push(file);
        }
    }
    assert!(
        offenders.is_empty(),
        "import settings or cli: {offenders:?}"
    );
}

#[test]
fn the_registry_knows_no_bundle_and_the_bundle_no_registry() {
    let mut offenders = Vec::new();
    for (file, text) in sources() {
        let code = code_of(&text);
        if file.starts_with("registry/")
            && [
                "crate::bundle",
                "crate::pull",
                "crate::push",
                "crate::source",
            ]
            .iter()
            .any(|m| code.contains(m))
        {
            offenders.push(file.clone());
        }
        if (file.starts_with("bundle/") || file == "store.rs" || file == "layout.rs")
            && code.contains("crate::registry")
        {
            offenders.push(file);
        }
    }
    assert!(offenders.is_empty(), "layers crossed: {offenders:?}");
}

#[test]
fn no_command_imports_another() {
    let commands = ["pull", "push", "serve", "copy", "verify", "list"];
    let mut offenders = Vec::new();
    for (file, text) in sources() {
        let own = file
            .split(['/', '.'])
            .next()
            .unwrap_or_default()
            .to_string();
        if !commands.contains(&own.as_str()) {
            continue;
        }
        let code = code_of(&text);
        // verify.rs is also the full check of a bundle's bytes that `serve --verify` runs
        // first; it imports no command itself.
        for other in commands.iter().filter(|c| **c != own && **c != "verify") {
            if code.contains(&format!("crate::{other}::"))
                || code.contains(&format!("crate::{other};"))
            {
                offenders.push(format!("{file} uses {other}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "commands importing each other: {offenders:?}"
    );
}

#[test]
fn no_source_file_is_over_600_lines() {
    let long: Vec<(String, usize)> = sources()
        .into_iter()
        .map(|(file, text)| (file, text.lines().count()))
        .filter(|(_, lines)| *lines > 600)
        .collect();
    assert!(long.is_empty(), "{long:?}");
}

#[test]
fn no_two_files_import_each_other() {
    let sources = sources();
    let modules: BTreeSet<String> = sources.keys().map(|f| module_of(f)).collect();
    let file_of: BTreeMap<String, String> =
        sources.keys().map(|f| (module_of(f), f.clone())).collect();
    let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
    for (file, text) in &sources {
        let own = module_of(file);
        for module in named_modules(file, &code_of(text), &modules) {
            // A directory module and its own files contain each other; that is no import.
            if module.starts_with(&format!("{own}::")) || own.starts_with(&format!("{module}::")) {
                continue;
            }
            edges.insert((file.clone(), file_of[&module].clone()));
        }
    }
    let circles: Vec<(String, String)> = edges
        .iter()
        .filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone())))
        .cloned()
        .collect();
    assert!(
        circles.is_empty(),
        "files that import each other: {circles:?}"
    );
}
