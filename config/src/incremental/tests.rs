#![allow(clippy::unwrap_used)]

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn env(name: &str) -> Option<String> {
    (name == "PORT").then(|| "8001".to_string())
}

/// A config of `n` backends and models in block style, with `indent` spaces before the items'
/// dashes, comments and blank lines between items, and one field changed by `variant`.
fn doc(n: usize, indent: usize, variant: usize) -> String {
    let pad = " ".repeat(indent);
    let mut s = String::from(
        "# generated\nlisteners:\n  data: { address: 127.0.0.1:0 }\n  admin:\n    address: 127.0.0.1:0\nshutdown: { drain_timeout: 1s }\n\nbackends:\n",
    );
    for i in 0..n {
        let port = if i == variant { 9000 } else { 8000 };
        s.push_str(&format!(
            "{pad}- name: b{i}\n{pad}  endpoints:\n{pad}    - url: http://127.0.0.{}:{port}\n{pad}      labels: {{ node: n{i}, gpus: '0' }}\n{pad}    - {{ url: 'http://127.0.1.{}:8000', labels: {{ pool: a&b*c }} }}\n",
            i + 1,
            i + 1
        ));
        if i % 3 == 0 {
            s.push_str("# a comment between items\n\n");
        }
        if i % 5 == 2 {
            // A block scalar whose lines look like items and keys.
            s.push_str(&format!(
                "{pad}    - url: http://127.0.2.{}:8000\n{pad}      labels:\n{pad}        note: |\n{pad}          - not an item\n{pad}          x: y\n",
                i + 1
            ));
        }
        if i % 4 == 1 {
            s.push_str(&format!(
                "{pad}  timeouts:\n{pad}    connect: 2s # inline\n"
            ));
        }
    }
    s.push_str("models:\n");
    for i in 0..n {
        s.push_str(&format!("{pad}- name: m{i}\n{pad}  backend: b{i}\n"));
    }
    s
}

/// The incremental parse of `text` (after `before`, when given) agrees with the whole parse:
/// both the same config, or both the same error.
fn agree(before: Option<&str>, text: &str, lookup: env::Lookup<'_>) -> Option<Reuse> {
    let mut inc = Incremental::default();
    if let Some(b) = before {
        let _ = inc.parse(b, lookup);
    }
    let whole = Config::from_yaml_env(text, lookup);
    let part = inc.parse(text, lookup);
    match (whole, part) {
        (Ok(w), Ok((p, reuse))) => {
            assert_eq!(w, *p, "configs differ for:\n{text}");
            Some(reuse)
        }
        (Err(w), Err(p)) => {
            assert_eq!(w.to_string(), p.to_string(), "errors differ for:\n{text}");
            None
        }
        (w, p) => panic!(
            "whole {:?} but incremental {:?} for:\n{text}",
            w.map(|_| ()),
            p.map(|_| ())
        ),
    }
}

#[test]
fn documents_split_and_agree_with_the_whole_parse() {
    if let Err(e) = Config::from_yaml_env(&doc(12, 2, 99), &no_env) {
        panic!("{e}");
    }
    for indent in [0, 2, 4] {
        let text = doc(12, indent, 99);
        assert!(split::split(&text).is_some(), "indent {indent}");
        let reuse = agree(None, &text, &no_env).unwrap();
        assert_eq!(
            reuse,
            Reuse {
                reused: 0,
                parsed: 24,
                whole: false
            }
        );
    }
}

#[test]
fn an_unchanged_document_reuses_every_item() {
    let text = doc(20, 2, 99);
    let reuse = agree(Some(&text), &text, &no_env).unwrap();
    assert_eq!((reuse.reused, reuse.parsed, reuse.whole), (40, 0, false));
}

#[test]
fn a_changed_item_is_the_only_one_parsed() {
    let before = doc(20, 2, 99);
    let after = doc(20, 2, 7);
    let reuse = agree(Some(&before), &after, &no_env).unwrap();
    assert_eq!((reuse.reused, reuse.parsed), (39, 1));
}

#[test]
fn moved_inserted_and_removed_items_are_found_by_text() {
    let before = doc(10, 2, 99);
    let mut inc = Incremental::default();
    inc.parse(&before, &no_env).unwrap();
    // Drop the first backend and the first model, and add one at the end of each list.
    let b0 = "  - name: b0\n    endpoints:\n      - url: http://127.0.0.1:8000\n        labels: { node: n0, gpus: '0' }\n      - { url: 'http://127.0.1.1:8000', labels: { pool: a&b*c } }\n";
    assert!(before.contains(b0));
    let after = before
        .replacen(b0, "", 1)
        .replacen("  - name: m0\n    backend: b0\n", "", 1)
        + "  - name: m0\n    backend: b1\n";
    let whole = Config::from_yaml_env(&after, &no_env).unwrap();
    let (cfg, reuse) = inc.parse(&after, &no_env).unwrap();
    assert_eq!(whole, *cfg);
    assert_eq!((reuse.reused, reuse.parsed), (18, 1));
}

#[test]
fn skeleton_changes_are_applied_and_items_kept() {
    let before = doc(5, 2, 99);
    let after = before.replace("drain_timeout: 1s", "drain_timeout: 7s");
    let reuse = agree(Some(&before), &after, &no_env).unwrap();
    assert_eq!((reuse.reused, reuse.parsed), (10, 0));
}

#[test]
fn documents_it_cannot_follow_are_parsed_whole() {
    let base = doc(4, 2, 99);
    assert!(base.contains("  - name: b3\n    endpoints:") && base.contains("name: b1"));
    let cases = [
        // An anchor and an alias across items.
        base.replace(
            "  - name: b2\n    endpoints:",
            "  - name: b2\n    timeouts: &t { connect: 3s }\n    endpoints:",
        )
        .replace(
            "  - name: b3\n    endpoints:",
            "  - name: b3\n    timeouts: *t\n    endpoints:",
        ),
        // Flow-style lists.
        base.replace("backends:\n", "backends: [\n") + "",
        // A second document.
        format!("{base}---\n{base}"),
        // A tag.
        base.replace("name: b1", "name: !!str b1"),
    ];
    for (i, text) in cases.iter().enumerate() {
        if let Some(reuse) = agree(None, text, &no_env) {
            assert!(reuse.whole, "case {i} not parsed whole:\n{text}");
        }
    }
    // The anchor case is valid and parsed whole.
    assert!(agree(None, &cases[0], &no_env).unwrap().whole);
}

#[test]
fn errors_in_items_keep_the_whole_documents_path_and_line() {
    let before = doc(4, 2, 99);
    let bad = before.replace("backend: b2", "backend: b2\n    colour: red");
    assert!(agree(Some(&before), &bad, &no_env).is_none());
    let err = Config::from_yaml(&bad).unwrap_err().to_string();
    assert!(err.contains("models[2]"), "{err}");
    // The failed parse left the remembered document: the next good one reuses it.
    let mut inc = Incremental::default();
    inc.parse(&before, &no_env).unwrap();
    inc.parse(&bad, &no_env).unwrap_err();
    let (_, reuse) = inc.parse(&before, &no_env).unwrap();
    assert_eq!((reuse.reused, reuse.parsed), (8, 0));
}

#[test]
fn environment_variables_expand_in_items_and_skeleton() {
    let text = doc(3, 2, 99).replace("127.0.0.2:8000", "127.0.0.2:${PORT}")
        + "pin_header: ${HEADER:-x-pin}\n";
    let reuse = agree(None, &text, &env).unwrap();
    assert!(!reuse.whole);
    let (cfg, _) = Incremental::default().parse(&text, &env).unwrap();
    assert_eq!(cfg.backends[1].endpoints[0].url, "http://127.0.0.2:8001");
    // An unset variable is the whole parse's error, with its path.
    let unset = text.replace("${PORT}", "${NOPE}");
    assert!(agree(Some(&text), &unset, &env).is_none());
}

#[test]
fn lists_written_inline_stay_in_the_skeleton() {
    let text = "listeners: { data: { address: 127.0.0.1:0 }, admin: { address: 127.0.0.1:0 } }\n\
                backends: [{ name: a, endpoints: [{ url: http://127.0.0.1:9 }] }, { name: b, endpoints: [{ url: http://127.0.0.2:9 }] }]\n\
                models: [{ name: m, backend: a }]\n";
    let reuse = agree(None, text, &no_env).unwrap();
    assert_eq!((reuse.reused, reuse.parsed), (0, 3));
    let (cfg, _) = Incremental::default().parse(text, &no_env).unwrap();
    assert_eq!(cfg.backends.len(), 2);
    // One list inline, the other in block style.
    let mixed = text.replace(
        "models: [{ name: m, backend: a }]\n",
        "models:\n  - name: m\n    backend: b\n",
    );
    let reuse = agree(Some(text), &mixed, &no_env).unwrap();
    assert_eq!((reuse.reused, reuse.parsed, reuse.whole), (0, 3, false));
    let again = agree(Some(&mixed), &mixed, &no_env).unwrap();
    assert_eq!((again.reused, again.parsed), (1, 2));
}

#[test]
fn the_examples_agree() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut stack = vec![std::path::PathBuf::from(dir)];
    let mut n = 0;
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                agree(None, &text, &no_env);
                agree(Some(&text), &text, &no_env);
                n += 1;
            }
        }
    }
    assert!(n >= 3, "{n} examples");
}

/// Random edits of a valid document (characters that matter to YAML's structure, at random
/// places), each parsed after the original: the incremental parse agrees with the whole one
/// on every result, valid or not.
#[test]
fn random_edits_agree() {
    let inline = "listeners: { data: { address: 127.0.0.1:0 }, admin: { address: 127.0.0.1:0 } }\n\
                  backends: [{ name: b0, endpoints: [{ url: http://127.0.0.1:9 }] }]\n\
                  models:\n  - name: m0\n    backend: b0\n";
    let bases = [doc(6, 2, 99), inline.to_string()];
    let alphabet: &[&str] = &[
        "-",
        " ",
        "\n",
        ":",
        "#",
        "&a ",
        "*a",
        "[",
        "]",
        "{",
        "}",
        "'",
        "\"",
        "|",
        ">",
        "- x",
        "\n  - name: z\n",
        "\nmodels:\n",
        "\t",
        "  ",
        "\n- ",
        "---\n",
        "?",
        "x: 1\n",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut valid = 0;
    for round in 0..3000 {
        let base = &bases[round % 2];
        let mut text = base.clone();
        for _ in 0..(1 + next() % 3) {
            let at = (next() as usize) % text.len();
            if !text.is_char_boundary(at) {
                continue;
            }
            if next() % 3 == 0 {
                let end = (at + 1 + (next() as usize) % 8).min(text.len());
                if text.is_char_boundary(end) {
                    text.replace_range(at..end, "");
                }
            } else {
                text.insert_str(at, alphabet[(next() as usize) % alphabet.len()]);
            }
        }
        if agree(Some(base), &text, &no_env).is_some() {
            valid += 1;
        }
    }
    assert!(valid > 100, "only {valid} edits stayed valid");
}
