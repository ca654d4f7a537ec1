//! The library's top-level modules depend on each other without cycles
//! (issue 21 item 2): a layer can be read, tested and changed knowing only
//! the layers below it.
//!
//! Reads every `src/**/*.rs` file of the library (not `main.rs`, the binary),
//! collects the top-level modules it names through `crate::X` (also inside
//! `use crate::{a, b::c}` groups) and `super::…::X` paths that reach the crate
//! root, outside comments, string literals and `#[cfg(test)]` items, and
//! fails naming every cycle it finds. Plain std string scanning: the source
//! is our own and rustfmt-formatted, so a full parser buys nothing here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph_of(&src);
    assert!(
        graph.len() > 5,
        "found only {} modules under {}",
        graph.len(),
        src.display()
    );
    // The graph itself, for whoever reads the output (`--nocapture`).
    for (from, to) in &graph {
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        println!("{from} -> {}", to.join(", "));
    }
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "module cycles (a strongly connected set, then the cycles through its edges):\n{}",
        cycles.join("\n")
    );
}

/// The scanner on the forms the source uses.
#[test]
fn references_are_found_where_they_count() {
    let text = r#"//! Mentions crate::doc_comment only in a comment.
use std::fmt;
use crate::alpha::Thing;
use crate::{beta, gamma::{One, Two}, delta::Three};
/* crate::block_comment */
const S: &str = "crate::in_a_string";
const R: &str = r"crate::in_a_raw_string";
const C: char = '"';
fn f<'a>(x: &'a str) -> &'a str { crate::epsilon::call(x); super::zeta::g(); x }
#[cfg(test)]
use crate::test_only_use;
#[cfg(test)]
mod tests {
    use crate::test_only;
    fn g() { let _ = "}"; crate::also_test_only::h(); }
}
fn after() { crate::eta::x() }
"#;
    // As if in src/top/mod.rs: `super::` is the crate root.
    let refs = references(text, 1);
    let want: BTreeSet<String> = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(refs, want);
    // In src/top/sub.rs `super::` is `top` itself, `super::super::` the root.
    assert!(references("fn f() { super::x::y() }", 2).is_empty());
    assert_eq!(
        references("use super::super::x;", 2),
        BTreeSet::from(["x".to_string()])
    );
}

/// The cycle finder on a graph with one cycle and one chain.
#[test]
fn cycles_are_named() {
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "d")] {
        g.entry(a.into()).or_default().insert(b.into());
        g.entry(b.into()).or_default();
    }
    assert_eq!(cycles(&g), ["{a, b, c}:", "  a -> b -> c -> a"]);
    g.get_mut("b").unwrap().insert("a".into());
    assert_eq!(cycles(&g), ["{a, b, c}:", "  a -> b -> a", "  a -> b -> c -> a"]);
    g.get_mut("b").unwrap().remove("a");
    g.get_mut("c").unwrap().remove("a");
    assert!(cycles(&g).is_empty());
}

/// Module → the other top-level modules it refers to.
fn graph_of(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).unwrap();
        let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let top = parts[0].trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" || top == "bin" {
            continue;
        }
        // The module path's length: src/x.rs and src/x/mod.rs are 1 deep,
        // src/x/y.rs is 2.
        let last = parts.last().unwrap();
        let depth = if last == "mod.rs" {
            parts.len() - 1
        } else {
            parts.len()
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let refs = references(&text, depth);
        let entry = graph.entry(top.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != top));
    }
    // Names that are not modules (`crate::SomeFn` re-exported at the root) are not nodes.
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for to in graph.values_mut() {
        to.retain(|m| modules.contains(m));
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// The top-level modules `text` names, for a file `depth` modules deep.
fn references(text: &str, depth: usize) -> BTreeSet<String> {
    let code = without_test_items(&code_only(text));
    let b = code.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        let at_word_start = i == 0 || !is_ident(b[i - 1]) && b[i - 1] != b':';
        if at_word_start && code[i..].starts_with("crate::") {
            i += "crate::".len();
            out.extend(path_heads(&code, &mut i));
        } else if at_word_start && code[i..].starts_with("super::") {
            let mut ups = 0;
            while code[i..].starts_with("super::") {
                ups += 1;
                i += "super::".len();
            }
            let heads = path_heads(&code, &mut i);
            if ups == depth {
                out.extend(heads);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The first segment of the path at `*i`, or of each path in a `{…}` group.
fn path_heads(code: &str, i: &mut usize) -> Vec<String> {
    let b = code.as_bytes();
    if b.get(*i) == Some(&b'{') {
        let end = matching(b, *i);
        let inner = &code[*i + 1..end];
        *i = end;
        let mut heads = Vec::new();
        let (mut level, mut start) = (0, 0);
        for (k, c) in inner.char_indices() {
            match c {
                '{' => level += 1,
                '}' => level -= 1,
                ',' if level == 0 => {
                    heads.extend(ident_at(inner[start..].trim_start()));
                    start = k + 1;
                }
                _ => {}
            }
        }
        heads.extend(ident_at(inner[start..].trim_start()));
        heads.retain(|h| h != "self");
        heads
    } else {
        let head = ident_at(&code[*i..]);
        *i += head.as_ref().map_or(0, String::len);
        head.into_iter().collect()
    }
}

fn ident_at(s: &str) -> Option<String> {
    let n = s.bytes().take_while(|c| is_ident(*c)).count();
    (n > 0).then(|| s[..n].to_string())
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Index of the brace closing the one at `open`.
fn matching(b: &[u8], open: usize) -> usize {
    let mut level = 0;
    for (k, c) in b.iter().enumerate().skip(open) {
        match c {
            b'{' => level += 1,
            b'}' => {
                level -= 1;
                if level == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    b.len().saturating_sub(1)
}

/// `text` with comments, string and char literals blanked (same length).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|c| *c == b'\n').map_or(b.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut level, mut k) = (0, i);
            while k < b.len() {
                if b[k..].starts_with(b"/*") {
                    level += 1;
                    k += 2;
                } else if b[k..].starts_with(b"*/") {
                    level -= 1;
                    k += 2;
                    if level == 0 {
                        break;
                    }
                } else {
                    k += 1;
                }
            }
            blank(&mut out, i, k);
            i = k;
        } else if (rest.starts_with(b"r\"") || rest.starts_with(b"r#")) && (i == 0 || !is_ident(b[i - 1])) {
            let hashes = rest[1..].iter().take_while(|c| **c == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat(b'#').take(hashes));
            let start = i + 2 + hashes;
            let end = b[start..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |n| start + n + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if rest[0] == b'"' {
            let mut k = i + 1;
            while k < b.len() && b[k] != b'"' {
                k += if b[k] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, k + 1);
            i = k + 1;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let len = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|c| *c == b'\'').map_or(1, |n| n + 3)
            } else {
                let ch = std::str::from_utf8(&rest[1..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                if rest.get(1 + ch) == Some(&b'\'') {
                    ch + 2
                } else {
                    1
                }
            };
            blank(&mut out, i, i + len);
            i += len;
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `code` without the items `#[cfg(test)]` marks (a `mod tests { … }`, a `use`, a `fn`).
fn without_test_items(code: &str) -> String {
    let b = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while let Some(n) = code[i..].find("#[cfg(test)]") {
        let start = i + n;
        out.push_str(&code[i..start]);
        let mut k = start + "#[cfg(test)]".len();
        while k < b.len() && b[k] != b';' && b[k] != b'{' {
            k += 1;
        }
        i = if k < b.len() && b[k] == b'{' {
            matching(b, k) + 1
        } else {
            k + 1
        };
        i = i.min(b.len());
    }
    out.push_str(&code[i..]);
    out
}

/// Each strongly connected set of more than one module, then every
/// distinct shortest cycle through each of its edges.
fn cycles(graph: &Graph) -> Vec<String> {
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for m in graph.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    stack.push(m.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in graph.keys() {
        if done.contains(n) || !reachable[n].contains(n) {
            continue;
        }
        let set: BTreeSet<String> = graph
            .keys()
            .filter(|m| reachable[n].contains(*m) && reachable[*m].contains(n))
            .cloned()
            .collect();
        done.extend(set.iter().cloned());
        out.push(format!(
            "{{{}}}:",
            set.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
        let mut seen: BTreeSet<Vec<String>> = BTreeSet::new();
        for a in &set {
            for b in graph[a].iter().filter(|b| set.contains(*b)) {
                let mut cycle = vec![a.clone()];
                cycle.extend(shortest_path(graph, b, a, &set));
                // The same cycle from another edge: one rotation of it.
                let body = &cycle[..cycle.len() - 1];
                let low = (0..body.len()).min_by_key(|k| &body[*k]).unwrap_or(0);
                let mut key = body[low..].to_vec();
                key.extend_from_slice(&body[..low]);
                if seen.insert(key.clone()) {
                    key.push(key[0].clone());
                    out.push(format!("  {}", key.join(" -> ")));
                }
            }
        }
    }
    out
}

/// A shortest path `from` → `to` inside `set` (breadth first), both ends included.
fn shortest_path(graph: &Graph, from: &String, to: &String, set: &BTreeSet<String>) -> Vec<String> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.clone()]);
    while let Some(n) = queue.pop_front() {
        if n == *to {
            let mut path = vec![n.clone()];
            let mut at = n;
            while let Some(p) = prev.get(&at) {
                path.push(p.clone());
                at = p.clone();
            }
            path.reverse();
            return path;
        }
        for m in graph.get(&n).into_iter().flatten().filter(|m| set.contains(*m)) {
            if !prev.contains_key(m) && m != from {
                prev.insert(m.clone(), n.clone());
                queue.push_back(m.clone());
            }
        }
    }
    vec![from.clone(), to.clone()]
}
