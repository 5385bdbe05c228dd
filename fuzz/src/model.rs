//! The `model` reader (`infergate_gateway::model_field::extract_model`) against `serde_json`:
//! where `serde_json` reads the body as an object with one top-level `model` whose value is a
//! non-empty string M, the reader returns M; with no such string, the reader says it is
//! missing; with two or more top-level `model` keys (compared after unescaping) it refuses the
//! body as a duplicate; whatever `serde_json` refuses, or reads as something other than an
//! object, is malformed.

use std::fmt;

use infergate_gateway::model_field::{extract_model, ModelFieldError};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// How a body reads: the model, or why there is none.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Model(String),
    Missing,
    Duplicate,
    Malformed,
}

/// Runs the reader on `body` and compares it with `serde_json`.
pub fn check(body: &[u8]) -> Result<(), String> {
    let want = oracle(body);
    let got = read(body)?;
    if got == want {
        Ok(())
    } else {
        Err(format!("serde_json: {want:?}, extract_model: {got:?}"))
    }
}

/// What the reader (`extract_model`) makes of `body`; `Err` when it says malformed without
/// saying why.
pub fn read(body: &[u8]) -> Result<Read, String> {
    Ok(match extract_model(body) {
        Ok(m) => Read::Model(m.into_owned()),
        Err(ModelFieldError::Missing) => Read::Missing,
        Err(ModelFieldError::Duplicate) => Read::Duplicate,
        Err(ModelFieldError::Malformed(msg)) if msg.is_empty() => {
            return Err("malformed, with an empty message".into())
        }
        Err(ModelFieldError::Malformed(_)) => Read::Malformed,
    })
}

/// What `serde_json` makes of `body`.
pub fn oracle(body: &[u8]) -> Read {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Read::Malformed;
    };
    if top_level_model_keys(body) >= 2 {
        return Read::Duplicate;
    }
    match map.get("model") {
        Some(Value::String(m)) if !m.is_empty() => Read::Model(m.clone()),
        _ => Read::Missing,
    }
}

/// Top-level `model` keys of a document `serde_json` reads as an object, duplicates counted.
fn top_level_model_keys(body: &[u8]) -> usize {
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while let Some(k) = map.next_key::<String>()? {
                n += usize::from(k == "model");
                map.next_value::<IgnoredAny>()?;
            }
            Ok(n)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    de.deserialize_map(Count).unwrap_or(0)
}
