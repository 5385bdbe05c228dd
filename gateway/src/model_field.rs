//! Reads the `model` field, and nothing else, from a request body.
//!
//! The body is read the way `serde_json` reads it into a `Value`: a body that `serde_json`
//! refuses (bad syntax, invalid UTF-8, a lone surrogate escape, a number out of range, nesting
//! deeper than 128) is refused here too, so the gateway never routes a body the server may read
//! differently. A body with two top-level `model` keys (compared after unescaping) is refused:
//! servers disagree on which one counts (Python's `json` keeps the last).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why no model name could be read from a body.
#[derive(Debug, PartialEq, Eq)]
pub enum ModelFieldError {
    /// The body is not a JSON object.
    Malformed(String),
    /// The body is a JSON object without a string `model`.
    Missing,
    /// The body is a JSON object with more than one top-level `model` key.
    Duplicate,
}

/// Returns the value of the top-level `model` field of a JSON object.
///
/// The whole document is checked to be well-formed JSON, but only `model` is kept; every other
/// value is checked and dropped without being built. The name borrows from the body unless it
/// contains escapes.
pub fn extract_model(body: &[u8]) -> Result<Cow<'_, str>, ModelFieldError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = de
        .deserialize_map(ModelVisitor)
        .map_err(|e| ModelFieldError::Malformed(e.to_string()))?;
    de.end()
        .map_err(|e| ModelFieldError::Malformed(e.to_string()))?;
    match found {
        Found { keys: 2.., .. } => Err(ModelFieldError::Duplicate),
        Found { value: Some(m), .. } if !m.is_empty() => Ok(m),
        _ => Err(ModelFieldError::Missing),
    }
}

/// The top-level `model` keys of an object: how many, and the string value of the first.
struct Found<'de> {
    keys: u32,
    value: Option<Cow<'de, str>>,
}

struct ModelVisitor;

impl<'de> Visitor<'de> for ModelVisitor {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = Found {
            keys: 0,
            value: None,
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "model" {
                found.keys = found.keys.saturating_add(1);
                let value = map.next_value::<ModelValue<'de>>()?.0;
                if found.keys == 1 {
                    found.value = value;
                }
            } else {
                map.next_value::<Checked>()?;
            }
        }
        Ok(found)
    }
}

/// A value that is read in full, as `serde_json::Value` would read it (UTF-8, escapes and
/// number ranges checked), and then dropped. `serde::de::IgnoredAny` would skip strings and
/// numbers without those checks.
struct Checked;

impl<'de> de::Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Checked, A::Error> {
        while s.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Checked, A::Error> {
        while m.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// A `model` value: a string, or anything else (treated as missing), read like [`Checked`].
struct ModelValue<'de>(Option<Cow<'de, str>>);

impl<'de> de::Deserialize<'de> for ModelValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ModelValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a model name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ModelValue(Some(v.into())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ModelValue(Some(v.to_owned().into())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(ModelValue(Some(v.into())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Checked.visit_unit().map(|_| ModelValue(None))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Checked.visit_bool(v).map(|_| ModelValue(None))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Checked.visit_i64(v).map(|_| ModelValue(None))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Checked.visit_u64(v).map(|_| ModelValue(None))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Checked.visit_f64(v).map(|_| ModelValue(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Self::Value, A::Error> {
                Checked.visit_seq(s).map(|_| ModelValue(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                Checked.visit_map(m).map(|_| ModelValue(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_model_anywhere_at_top_level() {
        let body = br#"{"messages":[{"role":"user","content":"hi \"model\": x"}],"model":"llama","stream":true}"#;
        assert_eq!(extract_model(body).unwrap(), "llama");
        assert!(matches!(
            extract_model(br#"{"model":"a\u0062c"}"#).unwrap(),
            std::borrow::Cow::Owned(ref s) if s == "abc"
        ));
    }

    #[test]
    fn nested_model_keys_do_not_count() {
        assert_eq!(
            extract_model(br#"{"x":{"model":"inner"},"model":"outer"}"#).unwrap(),
            "outer"
        );
        assert_eq!(
            extract_model(br#"{"x":{"model":"inner"}}"#),
            Err(ModelFieldError::Missing)
        );
    }

    #[test]
    fn rejects_malformed_and_missing() {
        assert!(matches!(
            extract_model(b"{\"model\":"),
            Err(ModelFieldError::Malformed(_))
        ));
        assert!(matches!(
            extract_model(b"[1,2]"),
            Err(ModelFieldError::Malformed(_))
        ));
        assert!(matches!(
            extract_model(b"{} trailing"),
            Err(ModelFieldError::Malformed(_))
        ));
        assert!(matches!(
            extract_model(b""),
            Err(ModelFieldError::Malformed(_))
        ));
        assert_eq!(
            extract_model(b"{\"model\":3}"),
            Err(ModelFieldError::Missing)
        );
        assert_eq!(
            extract_model(b"{\"model\":\"\"}"),
            Err(ModelFieldError::Missing)
        );
        assert_eq!(
            extract_model(b"{\"prompt\":\"x\"}"),
            Err(ModelFieldError::Missing)
        );
    }

    #[test]
    fn two_top_level_model_keys_are_refused() {
        for body in [
            &br#"{"model":"demo","model":"nope"}"#[..],
            br#"{"model":"demo","mod\u0065l":"nope"}"#,
            br#"{"model":1,"x":[],"model":"demo"}"#,
            br#"{"model":"demo","model":"demo"}"#,
        ] {
            assert_eq!(
                extract_model(body),
                Err(ModelFieldError::Duplicate),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // A malformed body is malformed first.
        assert!(matches!(
            extract_model(br#"{"model":"a","model":"b""#),
            Err(ModelFieldError::Malformed(_))
        ));
        assert_eq!(
            extract_model(br#"{"x":{"model":"a","model":"b"},"model":"demo"}"#).unwrap(),
            "demo"
        );
    }

    #[test]
    fn skipped_values_are_checked_as_serde_json_reads_them() {
        for body in [
            &b"{\"model\":\"demo\",\"x\":\"\xff\"}"[..],
            br#"{"model":"demo","x":"\ud800"}"#,
            br#"{"model":"demo","x":1e400}"#,
            br#"{"model":"demo","x":{"\udc00":1}}"#,
        ] {
            assert!(
                matches!(extract_model(body), Err(ModelFieldError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let ok =
            br#"{"model":"demo","x":[1e300,-0.5,123456789012345678901234567890,"\ud83d\ude00"]}"#;
        assert_eq!(extract_model(ok).unwrap(), "demo");
    }
}
