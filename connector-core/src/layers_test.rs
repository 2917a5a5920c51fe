//! The layer rule of lib.rs, checked on the source: every `crate::` path a
//! module names must be of its own layer or one below, and no vendor's
//! module names another vendor's.

use crate::domain::vendor::Vendor;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A top-level module's layer: higher layers may import lower ones only.
/// `http` sits beside `flows`: neither imports the other.
fn layer(top: &str) -> Option<u8> {
    Some(match top {
        "domain" => 0,
        "aws" => 1,
        "vendors" => 2,
        "flows" => 3,
        "http" => 4,
        _ => return None,
    })
}

fn may_import(from: &str, to: &str) -> bool {
    let (Some(a), Some(b)) = (layer(from), layer(to)) else {
        return false;
    };
    match (a, b) {
        (4, 3) | (3, 4) => false,
        (4, _) => true,
        _ => b <= a,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source file of the crate: its path under src/ and its text.
fn sources() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).expect("readable source");
            let rel = file.strip_prefix(&src).expect("under src").to_path_buf();
            (rel, text)
        })
        .collect()
}

/// The top-level modules a source text names through `crate::` paths,
/// including the heads of `use crate::{a::…, b::…}` groups.
fn crate_paths(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        // `connector_crate::` is not ours.
        .filter(|(at, _)| !text[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .flat_map(|(at, _)| use_paths(&text[at + "crate::".len()..]))
        .filter_map(|path| path.into_iter().next())
        .collect()
}

/// The vendor a file of `vendors/` belongs to, if it is a driver's.
fn vendor_of(rel: &Path) -> Option<&'static str> {
    let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
    (parts.next()? == "vendors").then_some(())?;
    let name = parts.next()?;
    let name = name.trim_end_matches(".rs");
    Vendor::ALL
        .into_iter()
        .map(Vendor::as_str)
        .find(|v| *v == name)
}

fn violations() -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, text) in sources() {
        let top = module_of(&rel).into_iter().next().unwrap_or_default();
        if matches!(top.as_str(), "lib" | "layers_test") {
            continue;
        }
        if layer(&top).is_none() {
            bad.push(format!("{}: module `{top}` is in no layer", rel.display()));
            continue;
        }
        for to in crate_paths(&text) {
            let root_reexport = matches!(to.as_str(), "App" | "Error" | "Result" | "Vendor");
            let to_layer = match to.as_str() {
                "Error" | "Result" | "Vendor" => "domain",
                "App" => "app",
                other => other,
            };
            if to_layer != top && !may_import(&top, to_layer) {
                let what = if root_reexport { "re-export " } else { "" };
                bad.push(format!(
                    "{}: `{top}` may not import the {what}`crate::{to}`",
                    rel.display()
                ));
            }
        }
        if let Some(own) = vendor_of(&rel) {
            for other in Vendor::ALL.map(Vendor::as_str) {
                if other == own {
                    continue;
                }
                let named = [
                    format!("crate::vendors::{other}::"),
                    format!("super::{other}::"),
                    format!("vendors::{other}::"),
                ];
                if named.iter().any(|n| text.contains(n.as_str())) {
                    bad.push(format!(
                        "{}: the {own} driver imports the {other} driver",
                        rel.display()
                    ));
                }
            }
        }
    }
    bad
}

/// A file's module path (`vendors::whoop`, `domain`), from its place in src/.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The source a module graph is drawn from: the file without its test module.
fn production_text(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at])
}

/// The paths a `use` tail or an inline path spells, groups expanded:
/// `a::{b, c::{d}}` is `a::b` and `a::c::d`.
fn use_paths(rest: &str) -> Vec<Vec<String>> {
    fn ident(s: &str) -> &str {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        &s[..end]
    }
    let mut prefix = Vec::new();
    let mut rest = rest.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut out = Vec::new();
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth > 0 => depth -= 1,
                    ',' | '}' if depth == 0 => {
                        for tail in use_paths(&group[start..i]) {
                            let mut path = prefix.clone();
                            path.extend(tail);
                            out.push(path);
                        }
                        start = i + 1;
                        if c == '}' {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            return out;
        }
        let name = ident(rest);
        if name.is_empty() {
            return vec![prefix];
        }
        prefix.push(name.to_string());
        rest = &rest[name.len()..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r.trim_start(),
            None => return vec![prefix],
        }
    }
}

/// Edges between the crate's modules (files), drawn from `crate::`,
/// `super::` and child-module paths, tests left out.
fn module_graph() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let mut modules = std::collections::BTreeMap::new();
    for (rel, text) in sources() {
        let name = rel.file_name().unwrap_or_default().to_string_lossy();
        if matches!(
            name.as_ref(),
            "tests.rs" | "testing.rs" | "layers_test.rs" | "lib.rs"
        ) {
            continue;
        }
        modules.insert(module_of(&rel), production_text(&text).to_string());
    }
    let known: BTreeSet<Vec<String>> = modules.keys().cloned().collect();
    let resolve = |path: Vec<String>| -> Option<String> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| known.contains(p))
            .map(|p| p.join("::"))
    };
    let mut graph = std::collections::BTreeMap::new();
    for (module, text) in &modules {
        let me = module.join("::");
        let mut edges = BTreeSet::new();
        let children: Vec<&str> = text
            .lines()
            .filter_map(|l| {
                l.trim()
                    .trim_start_matches("pub ")
                    .strip_prefix("mod ")
                    .and_then(|r| r.strip_suffix(';'))
            })
            .collect();
        let mut add = |base: Vec<String>, rest: &str| {
            for tail in use_paths(rest) {
                let mut path = base.clone();
                path.extend(tail);
                edges.extend(resolve(path));
            }
        };
        for (at, _) in text.match_indices("crate::") {
            if !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                add(Vec::new(), &text[at + 7..]);
            }
        }
        for (at, _) in text.match_indices("super::") {
            if !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                add(
                    module[..module.len().saturating_sub(1)].to_vec(),
                    &text[at + 7..],
                );
            }
        }
        for child in children {
            let needle = format!("{child}::");
            for (at, _) in text.match_indices(&needle) {
                if !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                    add(module.clone(), &text[at..]);
                }
            }
        }
        edges.remove(&me);
        graph.insert(me, edges);
    }
    graph
}

/// Every import cycle, each as the modules along it.
fn cycles(graph: &std::collections::BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's strongly connected components; any with more than one module is a cycle.
    struct Walk<'g> {
        graph: &'g std::collections::BTreeMap<String, BTreeSet<String>>,
        index: std::collections::BTreeMap<&'g str, (usize, usize)>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, (n, n));
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.index[w.as_str()].1.min(self.index[v].1);
                    self.index.get_mut(v).expect("visited").1 = low;
                } else if self.on_stack.contains(w.as_str()) {
                    let low = self.index[w.as_str()].0.min(self.index[v].1);
                    self.index.get_mut(v).expect("visited").1 = low;
                }
            }
            if self.index[v].0 == self.index[v].1 {
                let mut part = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    part.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if part.len() > 1 {
                    part.sort();
                    self.found.push(part);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: Default::default(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_module_imports_its_way_back_to_itself() {
    let graph = module_graph();
    // The graph sees `crate::`, `super::` and child-module paths alike.
    assert!(graph["vendors::registry"].contains("vendors::whoop"));
    assert!(graph["vendors::whoop"].contains("vendors::driver"));
    assert!(graph["vendors::whoop"].contains("vendors::client"));
    assert!(graph["aws::store"].contains("aws::store::connections"));
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "import cycles:\n{}",
        found
            .iter()
            .map(|c| c.join(" <-> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn grouped_paths_are_each_seen() {
    let paths = use_paths("vendors::{dexcom, driver::{Fetched, VendorCtx}, self};\nfn x() {}");
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        [
            "vendors::dexcom",
            "vendors::driver::Fetched",
            "vendors::driver::VendorCtx",
            "vendors::self"
        ]
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph = [
        ("a", &["b"][..]),
        ("b", &["c"]),
        ("c", &["a"]),
        ("d", &["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
    .collect();
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "c"]]);
}

#[test]
fn every_import_runs_down_the_layers() {
    let bad = violations();
    assert!(bad.is_empty(), "layer rule broken:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_sees_a_wrong_import() {
    let paths = crate_paths(
        "use crate::domain::vendor::Vendor;\nuse crate::{aws::sdk, flows::{app::App}};\nlet x = crate::vendors::client::send;",
    );
    assert_eq!(
        paths.into_iter().collect::<Vec<_>>(),
        ["aws", "domain", "flows", "vendors"]
    );
    assert!(may_import("flows", "aws"));
    assert!(!may_import("domain", "aws"));
    assert!(!may_import("aws", "vendors"));
    assert!(!may_import("vendors", "flows"));
    assert!(!may_import("http", "flows") && !may_import("flows", "http"));
    assert!(may_import("http", "domain"));
    assert_eq!(
        vendor_of(Path::new("vendors/oura/subscriptions.rs")),
        Some("oura")
    );
    assert_eq!(vendor_of(Path::new("vendors/client.rs")), None);
}
