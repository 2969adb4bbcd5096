//! The server's top-level modules form layers that point one way (see `src/lib.rs`): a module
//! uses only modules of its own layer or those above it, and no two modules use each other,
//! however indirectly. Read from the source, so a new `use` that breaks the rule fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom: each layer may use the layers before it.
const LAYERS: &[&[&str]] = &[
    &[
        "config",
        "clock",
        "secrets",
        "passwords",
        "limits",
        "auction_log",
    ],
    &["store", "payments"],
    &["live"],
    &["service"],
    &["state", "error", "auth", "api", "pages", "socket", "media"],
    &["app", "demo", "serve"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer; add it to LAYERS"))
}

/// Which top-level modules each top-level module names as `crate::…` (comments left out).
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("reads src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).expect("under src");
            let first = relative.components().next().expect("a component");
            let module = first
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("reads a source file");
            let used = uses.entry(module.clone()).or_default();
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                for (at, _) in code.match_indices("crate::") {
                    let name: String = code[at + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    // `crate::{a, b}` is not used here; a module name is never empty.
                    if !name.is_empty() && name != module {
                        used.insert(name);
                    }
                }
            }
        }
    }
    uses
}

#[test]
fn modules_use_only_their_own_layer_or_those_above() {
    let wrong: Vec<String> = uses()
        .iter()
        .flat_map(|(module, used)| {
            used.iter()
                .filter(|u| layer(u) > layer(module))
                .map(move |u| format!("{module} uses {u}, a lower layer"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_two_modules_use_each_other() {
    let uses = uses();
    // Depth-first from every module: reaching itself again is a cycle.
    for start in uses.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<Vec<&str>> = vec![vec![start.as_str()]];
        while let Some(path) = stack.pop() {
            let last = *path.last().expect("a path is never empty");
            for next in uses.get(last).into_iter().flatten() {
                assert!(
                    next != start,
                    "an import cycle: {} -> {next}",
                    path.join(" -> ")
                );
                if seen.insert(next.as_str()) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
}
