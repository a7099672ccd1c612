//! Tidy checks: the code against its own map. `docs/architecture.md` holds the layer table
//! (a fenced `layers` block); this test reads it and every `src/**/*.rs`, and fails when
//! a module uses a module above its layer, when a top-level module is missing from the
//! table, when a file does not open with a `//!` line saying what it owns, or when a
//! public type gains a second public path.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layer table: module → layer, and the modules each may use beside its layer.
struct Layers {
    layer: BTreeMap<String, u32>,
    beside: BTreeMap<String, BTreeSet<String>>,
}

fn layers() -> Layers {
    let doc = fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let block = doc
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/architecture.md has a ```layers block");
    let mut layers = Layers {
        layer: BTreeMap::new(),
        beside: BTreeMap::new(),
    };
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (head, rest) = line
            .split_once(':')
            .expect("`<layer>: modules` or `beside: a -> b`");
        if head == "beside" {
            let (from, to) = rest.split_once("->").expect("beside: a -> b c");
            layers
                .beside
                .entry(from.trim().to_owned())
                .or_default()
                .extend(to.split_whitespace().map(str::to_owned));
        } else {
            let n: u32 = head.parse().expect("a layer number");
            for module in rest.split_whitespace() {
                layers.layer.insert(module.to_owned(), n);
            }
        }
    }
    layers
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/flow/login.rs` → `flow`; `src/lib.rs` → `lib`.
fn top_module(path: &Path) -> String {
    let rel = path.strip_prefix(root().join("src")).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file without comments and string literals (so prose and messages that
/// mention `crate::x` do not count), and without `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The top-level modules a file's code names as `crate::<module>` (with `use crate::{a,
/// b}` groups expanded), and the root re-exports it names (`crate::Identa`).
fn crate_references(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        // `$crate::…` in a macro names the crate the macro expands in, from outside.
        if rest[..i].ends_with('$') {
            rest = after;
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
        rest = after;
    }
    found
}

/// Root re-exports (`pub use engine::{Identa, …}` in lib.rs): name → module.
fn root_exports() -> BTreeMap<String, String> {
    let lib = fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let mut out = BTreeMap::new();
    for statement in code_of(&lib).split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            out.insert(item.to_owned(), module.to_owned());
        }
    }
    out
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let layers = layers();
    let exports = root_exports();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut problems = Vec::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let module = top_module(file);
        if module == "lib" {
            continue;
        }
        modules.insert(module.clone());
        let Some(&own) = layers.layer.get(&module) else {
            continue;
        };
        let code = code_of(&fs::read_to_string(file).unwrap());
        for name in crate_references(&code) {
            let target = exports.get(&name).cloned().unwrap_or(name);
            if target == module || target == "self" {
                continue;
            }
            let allowed_beside = layers
                .beside
                .get(&module)
                .is_some_and(|b| b.contains(&target));
            match layers.layer.get(&target) {
                Some(&layer) if layer < own || allowed_beside => {}
                Some(&layer) => problems.push(format!(
                    "{} (layer {own}, `{module}`) uses `{target}` (layer {layer})",
                    file.strip_prefix(root()).unwrap().display()
                )),
                None if target.chars().next().is_some_and(char::is_lowercase) => {
                    problems.push(format!(
                        "{} uses `crate::{target}`, which the layer table does not name",
                        file.strip_prefix(root()).unwrap().display()
                    ))
                }
                None => {}
            }
        }
    }
    for module in &modules {
        if !layers.layer.contains_key(module) {
            problems.push(format!(
                "src/{module} is in no layer: add it to the table in docs/architecture.md"
            ));
        }
    }
    for module in layers.layer.keys() {
        if !modules.contains(module) {
            problems.push(format!(
                "docs/architecture.md names `{module}`, which src/ does not have"
            ));
        }
    }
    assert!(problems.is_empty(), "layering:\n{}", problems.join("\n"));
}

#[test]
fn every_source_file_says_what_it_owns() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            !fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` line: {missing:?}"
    );
}

/// One path per public type: a `pub use` may only re-export from a private submodule of
/// the same file (so the type's own module is not reachable too), never from elsewhere in
/// the crate.
#[test]
fn each_public_type_has_one_path() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let code = code_of(&fs::read_to_string(file).unwrap());
        let public_mods: BTreeSet<String> = code
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub mod "))
            .map(|m| m.trim_end_matches(';').trim().to_owned())
            .collect();
        for line in code.lines().map(str::trim) {
            let Some(path) = line.strip_prefix("pub use ") else {
                continue;
            };
            let first = path.split("::").next().unwrap_or_default();
            let shown = file.strip_prefix(root()).unwrap().display();
            if first == "crate" || first == "super" {
                problems.push(format!("{shown}: `{line}` re-exports from elsewhere"));
            } else if public_mods.contains(first) {
                problems.push(format!(
                    "{shown}: `{line}` re-exports from public module `{first}`: a second path"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
