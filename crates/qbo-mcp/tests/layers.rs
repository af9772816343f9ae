//! The layers of `crates/qbo-mcp/src`, checked: reads every source file's `use crate::…` and
//! `use super::…` trees and inline `crate::a::b` / `super::a` paths, and fails when a module
//! uses a layer above its own, or a module of its own layer it is not declared to use. The
//! table is the one in `docs/architecture.md` ("Layers"); change both together.
//!
//! `main.rs` (the command line over the library, which may use anything) and `lib.rs` (only
//! `mod` lines) are not checked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every module and the layer it sits in, lowest first. A file or a path belongs to the
/// longest entry that is a prefix of its module path (`people::grants::parse_realm` →
/// `people::grants`; `people::Person` → `people`).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &[
            "config",
            "secret",
            "error",
            "time",
            "db",
            "keys",
            "telemetry",
            "proxy",
        ],
    ),
    ("audit log", &["audit"]),
    (
        "QuickBooks client and people's records",
        &[
            "quickbooks",
            "people",
            "people::session",
            "people::tokens",
            "proposals::store",
        ],
    ),
    ("state", &["state"]),
    ("web", &["web"]),
    ("auth", &["auth"]),
    (
        "people's rules (take the Admin proof)",
        &[
            "people::admin",
            "people::password",
            "people::allowlist",
            "people::grants",
            "people::invites",
            "people::signin",
        ],
    ),
    (
        "features",
        &[
            "audit::api",
            "audit::pages",
            "companies",
            "mcp",
            "oauth",
            "ops",
            "people::api",
            "people::cli",
            "people::oidc",
            "people::pages",
            "proposals",
        ],
    ),
    // `properties` is the property tests (cfg(test)): they may reach any layer.
    ("top", &["server", "app", "properties"]),
];

/// Which module may use which other module of its own layer (by first segment; a module's own
/// files always may use each other).
const SAME_LAYER: &[(&str, &str)] = &[
    ("config", "secret"),
    ("db", "secret"),
    ("keys", "db"),
    ("keys", "secret"),
    ("telemetry", "config"),
    ("proxy", "config"),
    ("mcp", "oauth"),
    ("mcp", "companies"),
    // Write tools ask the approval policy; approvals list the companies a person may use.
    ("mcp", "proposals"),
    ("proposals", "companies"),
    // The admins' warnings in the page frame.
    ("people", "companies"),
    ("audit", "companies"),
    ("oauth", "companies"),
    ("server", "app"),
];

/// Crate-root macros and where they belong.
const MACROS: &[(&str, &str)] = &[("on_db", "db"), ("on_tx", "db")];

struct Room {
    module: &'static str,
    layer: usize,
}

fn room_of(path: &str) -> Option<Room> {
    let mut best: Option<Room> = None;
    for (layer, (_, modules)) in LAYERS.iter().enumerate() {
        for m in *modules {
            let prefixes = path == *m || path.starts_with(&format!("{m}::"));
            if prefixes && best.as_ref().is_none_or(|b| m.len() > b.module.len()) {
                best = Some(Room { module: m, layer });
            }
        }
    }
    best
}

fn first_segment(path: &str) -> &str {
    path.split("::").next().unwrap_or(path)
}

/// The module path of a source file: `people/mod.rs` → `people`, `people/api.rs` →
/// `people::api`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Expands a use tree (whitespace removed, without the trailing `;`) into full paths.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let join = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_owned()
        } else {
            format!("{a}::{b}")
        }
    };
    match tree.find('{') {
        Some(open) if tree.ends_with('}') => {
            let head = tree[..open].trim_end_matches("::");
            let base = join(prefix, head);
            let inner = &tree[open + 1..tree.len() - 1];
            let mut depth = 0;
            let mut start = 0;
            for (i, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&base, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            expand(&base, &inner[start..], out);
        }
        _ => {
            // `name as alias` arrives as `name@alias`.
            let item = tree.split('@').next().unwrap_or(tree);
            match item {
                "" => {}
                "self" | "*" => out.push(prefix.to_owned()),
                _ => out.push(join(prefix, item)),
            }
        }
    }
}

/// `crate::…` or `super::…` resolved to a path from the crate root, or `None` for anything
/// else (`std::…`, a local name).
/// `nested`: the path is written inside a module nested in the file (`mod tests`), whose
/// `super` is the file's own module.
fn resolve(module: &str, nested: bool, path: &str) -> Option<String> {
    if let Some(rest) = path.strip_prefix("crate::") {
        return Some(rest.to_owned());
    }
    let mut rest = path;
    // `super` of `a::b` (file a/b.rs or a/b/mod.rs) is `a`.
    let mut parent: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
    let mut saw_super = false;
    while let Some(r) = rest.strip_prefix("super::") {
        if saw_super || !nested {
            parent.pop();
        }
        rest = r;
        saw_super = true;
    }
    saw_super.then(|| {
        let mut full = parent.join("::");
        if !full.is_empty() {
            full.push_str("::");
        }
        full.push_str(rest);
        full
    })
}

/// Every (line, path from the crate root) a file uses.
fn uses(module: &str, text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let nested = trimmed.len() < lines[i].len();
        if trimmed.starts_with("//") {
            i += 1;
            continue;
        }
        let stmt = trimmed.strip_prefix("pub ").unwrap_or(trimmed);
        let stmt = stmt.strip_prefix("pub(crate) ").unwrap_or(stmt);
        if let Some(tree) = stmt.strip_prefix("use ")
            && (tree.starts_with("crate::") || tree.starts_with("super::"))
        {
            let start = i;
            let mut whole = tree.to_owned();
            while !whole.trim_end().ends_with(';') && i + 1 < lines.len() {
                i += 1;
                whole.push_str(lines[i]);
            }
            let tree: String = whole
                .trim_end()
                .trim_end_matches(';')
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace(" as ", "@")
                .replace(' ', "");
            let (root, tree) = if let Some(t) = tree.strip_prefix("crate::") {
                ("crate", t.to_owned())
            } else {
                let supers = tree.matches("super::").count();
                let t = tree.replacen("super::", "", supers);
                ("super", format!("{}{}", "super::".repeat(supers), t))
            };
            let mut paths = Vec::new();
            if root == "crate" {
                expand("", &tree, &mut paths);
            } else {
                // Resolve the `super::…` head first, then expand the rest.
                let head_end = tree.rfind("super::").map_or(0, |p| p + "super::".len());
                let base = resolve(module, nested, &format!("{}x", &tree[..head_end]))
                    .map(|p| p.trim_end_matches('x').trim_end_matches("::").to_owned())
                    .unwrap_or_default();
                expand(&base, &tree[head_end..], &mut paths);
            }
            found.extend(paths.into_iter().map(|p| (start + 1, p)));
            i += 1;
            continue;
        }
        // Inline paths: `crate::a::b::…` and `super::a::…` in code.
        for marker in ["crate::", "super::"] {
            let mut from = 0;
            while let Some(pos) = lines[i][from..].find(marker) {
                let at = from + pos;
                let before = lines[i][..at].chars().last();
                from = at + marker.len();
                if before.is_some_and(|c| c == '$' || c == ':' || c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let tail: String = lines[i][at..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                if let Some(p) = resolve(module, nested, tail.trim_end_matches(':')) {
                    found.push((i + 1, p));
                }
            }
        }
        i += 1;
    }
    found
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut unplaced = BTreeSet::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "main" || module == "lib" {
            continue;
        }
        let shown = file.strip_prefix(src.parent().unwrap()).unwrap().display();
        let Some(from) = room_of(&module) else {
            unplaced.insert(format!("{shown} (module `{module}`)"));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, path) in uses(&module, &text) {
            let path = MACROS
                .iter()
                .find(|(name, _)| path == *name)
                .map_or(path.clone(), |(_, m)| (*m).to_owned());
            if path.is_empty() || first_segment(&path) == first_segment(&module) {
                if let Some(to) = room_of(&path)
                    && to.layer > from.layer
                {
                    problems.push(format!(
                        "{shown}:{line}: `{module}` ({}) uses `{path}` ({}), a layer above it",
                        LAYERS[from.layer].0, LAYERS[to.layer].0
                    ));
                }
                continue;
            }
            let Some(to) = room_of(&path) else {
                problems.push(format!(
                    "{shown}:{line}: `{path}` is in no layer; add its module to LAYERS in tests/layers.rs and docs/architecture.md"
                ));
                continue;
            };
            let rule = if to.layer > from.layer {
                Some(format!(
                    "{} may not use {}, a layer above it",
                    LAYERS[from.layer].0, LAYERS[to.layer].0
                ))
            } else if to.layer == from.layer
                && !SAME_LAYER.contains(&(first_segment(&module), first_segment(to.module)))
            {
                Some(format!(
                    "modules of one layer ({}) use each other only in the declared directions (SAME_LAYER)",
                    LAYERS[from.layer].0
                ))
            } else {
                None
            };
            if let Some(rule) = rule {
                problems.push(format!("{shown}:{line}: `{module}` uses `{path}`: {rule}"));
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "source files in no layer (add them to LAYERS in tests/layers.rs and to docs/architecture.md):\n{}",
        unplaced.into_iter().collect::<Vec<_>>().join("\n")
    );
    assert!(
        problems.is_empty(),
        "layer violations (the table is in docs/architecture.md):\n{}",
        problems.join("\n")
    );
}

#[test]
fn use_trees_expand() {
    let mut out = Vec::new();
    expand("", "people::{self,Person,grants::{a,b},class@y}", &mut out);
    assert_eq!(
        out,
        [
            "people",
            "people::Person",
            "people::grants::a",
            "people::grants::b",
            "people::class"
        ]
    );
    assert_eq!(
        room_of("people::grants::parse_realm").map(|r| r.module),
        Some("people::grants")
    );
    assert_eq!(room_of("people::Person").map(|r| r.module), Some("people"));
}
