//! [`XidKey`]: an XID number as a map key in the configuration.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// An XID number as a map key: written `13` or `"13"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct XidKey(pub u64);

impl Serialize for XidKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for XidKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = XidKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an XID number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<XidKey, E> {
                Ok(XidKey(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<XidKey, E> {
                u64::try_from(v)
                    .map(XidKey)
                    .map_err(|_| E::custom(format!("XID {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<XidKey, E> {
                v.trim()
                    .parse()
                    .map(XidKey)
                    .map_err(|_| E::custom(format!("{v:?} is not an XID number")))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for XidKey {
    fn schema_name() -> Cow<'static, str> {
        "XidNumber".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^[0-9]+$" })
    }
}
