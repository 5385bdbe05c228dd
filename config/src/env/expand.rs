//! The text of one value: its references expanded, and read as a number or boolean where one
//! is wanted.

use std::fmt;

use serde::de::{self, Visitor};

/// Looks up a variable: `None` when it is not set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's environment. A value that is not UTF-8 is converted lossily.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// Why a value could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpandError {
    /// `${NAME}` without a default, and `NAME` is not set.
    Unset { name: String },
    /// A `${` that is not `${NAME}` or `${NAME:-default}`.
    Malformed {
        reference: String,
        why: &'static str,
    },
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Unset { name } => write!(f, "environment variable {name} is not set"),
            ExpandError::Malformed { reference, why } => write!(
                f,
                "malformed reference {reference:?}: {why} (write ${{NAME}} or ${{NAME:-default}}, \
                 or $${{ for a literal ${{)"
            ),
        }
    }
}

impl std::error::Error for ExpandError {}

/// Expands every reference in `text`. `${NAME}` is the variable's value (empty when it is set
/// but empty); `${NAME:-default}` is `default` when the variable is unset or empty; `$${` is a
/// literal `${`. A `$` anywhere else is kept. Values are inserted as they are, not expanded
/// again. A default is taken as written, up to the first `}`.
pub fn expand(text: &str, lookup: Lookup<'_>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(body) = tail.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                return Err(ExpandError::Malformed {
                    reference: tail.to_string(),
                    why: "no closing }",
                });
            };
            out.push_str(&reference(&body[..end], lookup)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of one reference, `inner` being what stands between `${` and `}`.
fn reference(inner: &str, lookup: Lookup<'_>) -> Result<String, ExpandError> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    let malformed = |why| ExpandError::Malformed {
        reference: format!("${{{inner}}}"),
        why,
    };
    if name.is_empty() {
        return Err(malformed("the variable name is empty"));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(malformed(
            "a variable name is ASCII letters, digits and _, not starting with a digit",
        ));
    }
    match (lookup(name), default) {
        (Some(v), Some(d)) if v.is_empty() => Ok(d.to_string()),
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(ExpandError::Unset {
            name: name.to_string(),
        }),
    }
}

/// `text` as a decimal integer, a float or `true`/`false` when it is one, else as a string.
pub(super) fn typed<'de, V: Visitor<'de>, E: de::Error>(
    visitor: V,
    text: String,
) -> Result<V::Value, E> {
    match text.as_str() {
        "true" | "True" | "TRUE" => return visitor.visit_bool(true),
        "false" | "False" | "FALSE" => return visitor.visit_bool(false),
        _ => {}
    }
    if let Ok(n) = text.parse::<u64>() {
        return visitor.visit_u64(n);
    }
    if let Ok(n) = text.parse::<i64>() {
        return visitor.visit_i64(n);
    }
    let numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if numeric {
        if let Ok(f) = text.parse::<f64>() {
            return visitor.visit_f64(f);
        }
    }
    visitor.visit_string(text)
}
