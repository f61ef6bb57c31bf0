//! The layering rule, checked: nothing the store is built on uses the store. The test
//! reads the `use crate::...` trees of every file under `src/store/`, follows them to
//! the files they name (and those files' own imports), and fails if any of them
//! imports the store: that would be a cycle through the store.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// The paths a file imports from the crate (`use crate::a::b::{c, d::e}` gives
/// `a::b::c` and `a::b::d::e`), and its `crate::` paths written in place.
fn crate_paths(source: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        let tail = &rest[at + "crate::".len()..];
        let end = tree_end(tail);
        expand("", &tail[..end], &mut paths);
        rest = &tail[end..];
    }
    paths
}

/// Where the use tree at the start of `text` ends.
fn tree_end(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            ';' | ')' | ',' | '(' | '<' | '>' | '!' if depth == 0 => return i,
            c if c.is_whitespace() && depth == 0 => return i,
            _ => {}
        }
    }
    text.len()
}

fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree: String = tree.split_whitespace().collect();
    match tree.find('{') {
        None => out.push(format!("{prefix}{}", tree.trim_end_matches("::"))),
        Some(open) => {
            let head = &tree[..open];
            let inner = &tree[open + 1..tree.len() - 1];
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&format!("{prefix}{head}"), &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            if start < inner.len() {
                expand(&format!("{prefix}{head}"), &inner[start..], out);
            }
        }
    }
}

/// The file that defines the module a path is in: its longest prefix that is a file.
fn file_of(src: &Path, path: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = path.split("::").filter(|p| *p != "self").collect();
    (1..=parts.len()).rev().find_map(|n| {
        let base = src.join(parts[..n].join("/"));
        [base.with_extension("rs"), base.join("mod.rs")]
            .into_iter()
            .find(|file| file.is_file())
    })
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

#[test]
fn nothing_below_the_store_uses_the_store() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let store = src.join("store");
    let mut files = Vec::new();
    rust_files(&store, &mut files);

    let mut below = BTreeSet::new();
    let mut todo = files.clone();
    while let Some(file) = todo.pop() {
        let source = std::fs::read_to_string(&file).unwrap();
        for path in crate_paths(&source) {
            let Some(target) = file_of(&src, &path) else {
                continue;
            };
            if !target.starts_with(&store) && below.insert(target.clone()) {
                todo.push(target);
            }
        }
    }
    assert!(
        below.contains(&src.join("audience/import/rules.rs")),
        "the walk found what the store is built on: {below:?}"
    );
    let users: Vec<_> = below
        .iter()
        .filter(|file| {
            let source = std::fs::read_to_string(file).unwrap();
            crate_paths(&source)
                .iter()
                .any(|p| p == "store" || p.starts_with("store::"))
        })
        .collect();
    assert!(
        users.is_empty(),
        "the store is built on these, and they use the store: {users:?}"
    );
}

#[test]
fn use_trees_expand_to_paths() {
    let mut paths = crate_paths("use crate::{a::b::{c, d::e}, f};\nlet x = crate::g::h(1);");
    paths.sort();
    assert_eq!(paths, ["a::b::c", "a::b::d::e", "f", "g::h"]);
}
