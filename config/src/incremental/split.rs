//! Splits a block-style YAML config into its top-level sections and the items of its
//! `backends` and `models` lists, by lines, without parsing it.
//!
//! The split is conservative: any construct it does not recognise (flow-style lists, anchors,
//! aliases, tags, several documents, complex keys, a line it cannot place) makes it answer
//! `None`, and the caller parses the whole document instead. When it answers, parsing the
//! skeleton and each item alone gives the same values as parsing the whole text.

use std::ops::Range;

/// The document cut into a skeleton (every line but the list items; each list that was cut
/// written as `[]`) and the text of each list item. A list that is not cut (absent, or written
/// in flow style on its key's line) is `None` and stays in the skeleton as written.
#[derive(Debug, PartialEq)]
pub struct Split<'a> {
    pub skeleton: String,
    pub backends: Option<Vec<&'a str>>,
    pub models: Option<Vec<&'a str>>,
}

/// The top-level keys whose block-sequence items are cut out.
const LISTS: [&str; 2] = ["backends", "models"];

pub fn split(text: &str) -> Option<Split<'_>> {
    if has_node_properties(text) {
        return None;
    }
    let lines = lines(text);
    let mut skeleton = String::with_capacity(4096);
    let mut items: [Option<Vec<&str>>; 2] = [None, None];
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = &text[lines[i].clone()];
        match classify(line) {
            Line::Blank | Line::Comment => {
                skeleton.push_str(line);
                i += 1;
            }
            Line::Other => return None,
            Line::Key { key, inline } => {
                if seen.contains(&key) {
                    return None;
                }
                seen.push(key);
                let end = section_end(text, &lines, i + 1)?;
                match LISTS.iter().position(|l| *l == key) {
                    Some(list) if !inline => {
                        let body = lines[i + 1..end].to_vec();
                        items[list] = Some(list_items(text, &body)?);
                        skeleton.push_str(key);
                        skeleton.push_str(": []\n");
                    }
                    _ => {
                        for r in &lines[i..end] {
                            skeleton.push_str(&text[r.clone()]);
                        }
                    }
                }
                i = end;
            }
        }
    }
    let [backends, models] = items;
    Some(Split {
        skeleton,
        backends,
        models,
    })
}

/// Each line with its terminator.
fn lines(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(text.len() / 40);
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', text.as_bytes()) {
        out.push(start..nl + 1);
        start = nl + 1;
    }
    if start < text.len() {
        out.push(start..text.len());
    }
    out
}

enum Line<'a> {
    Blank,
    Comment,
    /// `key:` at column 0; `inline` when a value follows on the same line.
    Key {
        key: &'a str,
        inline: bool,
    },
    Other,
}

fn classify(line: &str) -> Line<'_> {
    let t = line.trim_end();
    if t.is_empty() {
        return Line::Blank;
    }
    if t.starts_with('#') {
        return Line::Comment;
    }
    let Some(colon) = t.find(':') else {
        return Line::Other;
    };
    let key = &t[..colon];
    let plain = key
        .bytes()
        .enumerate()
        .all(|(i, b)| b == b'_' || b.is_ascii_lowercase() || (i > 0 && b.is_ascii_digit()));
    if key.is_empty() || !plain {
        return Line::Other;
    }
    let rest = &t[colon + 1..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Line::Other;
    }
    let rest = rest.trim_start();
    Line::Key {
        key,
        inline: !rest.is_empty() && !rest.starts_with('#'),
    }
}

/// The index of the first line at or after `from` that starts a new top-level entry: a
/// column-0 line that is neither blank, a comment, nor a sequence item. `None` for a document
/// marker or directive.
fn section_end(text: &str, lines: &[Range<usize>], from: usize) -> Option<usize> {
    for (i, r) in lines.iter().enumerate().skip(from) {
        let line = &text[r.clone()];
        match line.as_bytes().first() {
            None | Some(b' ' | b'\n' | b'\r' | b'#') => {}
            Some(b'-') if is_item_start(line) && !line.starts_with("---") => {}
            Some(b'-' | b'.' | b'%') => return None,
            Some(_) => return Some(i),
        }
    }
    Some(lines.len())
}

/// `-` followed by a space or the end of the line.
fn is_item_start(rest: &str) -> bool {
    let b = rest.as_bytes();
    b.first() == Some(&b'-') && matches!(b.get(1), None | Some(b' ' | b'\n' | b'\r'))
}

/// The items of a block sequence whose lines are `body`: each item runs from its `- ` line to
/// the next one at the same indentation. Comments and blank lines before the first item and
/// between items go with the item above (or are dropped before the first: they carry nothing).
fn list_items<'a>(text: &'a str, body: &[Range<usize>]) -> Option<Vec<&'a str>> {
    let mut indent = None;
    let mut starts: Vec<usize> = Vec::new();
    let mut end = body.first().map_or(0, |r| r.start);
    for r in body {
        let line = &text[r.clone()];
        let trimmed = line.trim_start_matches(' ');
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with('\t') {
            return None;
        }
        let n = line.len() - trimmed.len();
        let ind = *indent.get_or_insert(n);
        if n == ind {
            if !is_item_start(trimmed) {
                return None;
            }
            starts.push(r.start);
        } else if n < ind || starts.is_empty() {
            return None;
        }
        end = r.end;
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(end);
        out.push(&text[s..e]);
    }
    Some(out)
}

/// Whether the text may hold an anchor (`&a`), an alias (`*a`), a tag (`!t`) or a flow
/// collection spanning lines in a way the split cannot follow: such a node property starts
/// at the start of a line's content or after a space, `[`, `{` or `,`. A URL's `&` or a
/// glob's `*` inside a word does not count; a comment that happens to match only costs a whole
/// parse.
fn has_node_properties(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr3_iter(b'&', b'*', b'!', b).any(|i| {
        i == 0
            || matches!(
                b[i - 1],
                b' ' | b'\t' | b'\n' | b'[' | b'{' | b',' | b'-' | b':'
            )
    })
}
