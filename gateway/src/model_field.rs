//! Reads the `model` field, and nothing else, from a request body.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// Why no model name could be read from a body.
#[derive(Debug, PartialEq, Eq)]
pub enum ModelFieldError {
    /// The body is not a JSON object.
    Malformed(String),
    /// The body is a JSON object without a string `model`.
    Missing,
}

/// Returns the value of the top-level `model` field of a JSON object.
///
/// The whole document is checked to be well-formed JSON, but only `model` is kept; every other
/// value is skipped without being built. The name borrows from the body unless it contains
/// escapes.
pub fn extract_model(body: &[u8]) -> Result<std::borrow::Cow<'_, str>, ModelFieldError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = de
        .deserialize_map(ModelVisitor)
        .map_err(|e| ModelFieldError::Malformed(e.to_string()))?;
    de.end()
        .map_err(|e| ModelFieldError::Malformed(e.to_string()))?;
    match found {
        Some(m) if !m.is_empty() => Ok(m),
        _ => Err(ModelFieldError::Missing),
    }
}

struct ModelVisitor;

impl<'de> Visitor<'de> for ModelVisitor {
    type Value = Option<std::borrow::Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut model = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "model" && model.is_none() {
                model = map.next_value::<ModelValue<'de>>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(model)
    }
}

/// A `model` value: a string, or anything else (treated as missing).
struct ModelValue<'de>(Option<std::borrow::Cow<'de, str>>);

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
                Ok(ModelValue(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ModelValue(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ModelValue(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ModelValue(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ModelValue(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ModelValue(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ModelValue(None))
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
}
