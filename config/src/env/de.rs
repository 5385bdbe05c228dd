//! A deserializer that wraps another and expands environment variables in the string scalars
//! it yields as values (not as map keys).
//!
//! A type that asks for a number or a boolean is served through the inner `deserialize_any`,
//! so that a scalar such as `${PORT}` (a string to YAML) reaches the expansion and can then be
//! given as a number; everything else is forwarded as it was asked.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

use super::expand::{expand, typed, Lookup};

/// What the type being deserialized asked for, which decides how an expanded text is given.
#[derive(Clone, Copy)]
enum Want {
    /// A string: the text as it is.
    Str,
    /// Anything, a number or a boolean: a decimal integer, a float or `true`/`false` when the
    /// text is one, else the text.
    Typed,
}

pub(super) struct Expanding<'a, D> {
    de: D,
    lookup: Lookup<'a>,
}

impl<'a, D> Expanding<'a, D> {
    pub(super) fn new(de: D, lookup: Lookup<'a>) -> Self {
        Expanding { de, lookup }
    }

    fn visitor<V>(&self, inner: V, want: Want) -> ExpandVisitor<'a, V> {
        ExpandVisitor {
            inner,
            want,
            lookup: self.lookup,
        }
    }
}

/// Forwards `deserialize_*` methods to the inner method of the same name, with the visitor
/// wrapped to give `want`.
macro_rules! forward {
    ($want:ident: $($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            let v = self.visitor(visitor, Want::$want);
            self.de.$method(v)
        }
    )*};
}

/// Serves `deserialize_*` methods through the inner `deserialize_any`.
macro_rules! through_any {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            let v = self.visitor(visitor, Want::Typed);
            self.de.deserialize_any(v)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Expanding<'_, D> {
    type Error = D::Error;

    forward!(Typed: deserialize_any deserialize_option deserialize_unit deserialize_seq
        deserialize_map);
    forward!(Str: deserialize_str deserialize_string deserialize_char deserialize_bytes
        deserialize_byte_buf deserialize_identifier);
    through_any!(deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64);

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = self.visitor(visitor, Want::Typed);
        self.de.deserialize_unit_struct(name, v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = self.visitor(visitor, Want::Typed);
        self.de.deserialize_newtype_struct(name, v)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = self.visitor(visitor, Want::Typed);
        self.de.deserialize_tuple(len, v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = self.visitor(visitor, Want::Typed);
        self.de.deserialize_tuple_struct(name, len, v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = self.visitor(visitor, Want::Typed);
        self.de.deserialize_struct(name, fields, v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let v = self.visitor(visitor, Want::Str);
        self.de.deserialize_enum(name, variants, v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.de.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

struct ExpandVisitor<'a, V> {
    inner: V,
    want: Want,
    lookup: Lookup<'a>,
}

impl<'de, V: Visitor<'de>> ExpandVisitor<'_, V> {
    /// Expands `v`; `None` when it has no reference (the caller passes it on as it came).
    fn expanded<E: de::Error>(&self, v: &str) -> Option<Result<String, E>> {
        v.contains("${")
            .then(|| expand(v, self.lookup).map_err(E::custom))
    }

    /// Gives an expanded text to the inner visitor as `want` says.
    fn give<E: de::Error>(self, text: String) -> Result<V::Value, E> {
        match self.want {
            Want::Str => self.inner.visit_string(text),
            Want::Typed => typed(self.inner, text),
        }
    }
}

/// Forwards `visit_*` methods that carry a plain value to the inner visitor.
macro_rules! pass {
    ($($method:ident: $ty:ty)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for ExpandVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    pass!(visit_bool: bool visit_i64: i64 visit_i128: i128 visit_u64: u64 visit_u128: u128
        visit_f64: f64 visit_char: char visit_bytes: &[u8] visit_borrowed_bytes: &'de [u8]
        visit_byte_buf: Vec<u8>);

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        match self.expanded(v) {
            Some(text) => self.give(text?),
            None => self.inner.visit_str(v),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        match self.expanded(v) {
            Some(text) => self.give(text?),
            None => self.inner.visit_borrowed_str(v),
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        match self.expanded(&v) {
            Some(text) => self.give(text?),
            None => self.inner.visit_string(v),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Expanding::new(d, self.lookup))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner
            .visit_newtype_struct(Expanding::new(d, self.lookup))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Access {
            inner: seq,
            lookup: self.lookup,
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Access {
            inner: map,
            lookup: self.lookup,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Access {
            inner: data,
            lookup: self.lookup,
        })
    }
}

/// A sequence, a map, an enum or a variant whose values are expanded.
struct Access<'a, A> {
    inner: A,
    lookup: Lookup<'a>,
}

/// A seed whose deserializer expands.
struct Seed<'a, S> {
    seed: S,
    lookup: Lookup<'a>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Expanding::new(d, self.lookup))
    }
}

impl<'a, A> Access<'a, A> {
    fn seed<S>(&self, seed: S) -> Seed<'a, S> {
        Seed {
            seed,
            lookup: self.lookup,
        }
    }

    fn visitor<V>(&self, inner: V) -> ExpandVisitor<'a, V> {
        ExpandVisitor {
            inner,
            want: Want::Typed,
            lookup: self.lookup,
        }
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Access<'_, A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Access<'_, A> {
    type Error = A::Error;

    /// Keys are read as written.
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'a, 'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Access<'a, A> {
    type Error = A::Error;
    type Variant = Access<'a, A::Variant>;

    /// The variant's name is read as written (in YAML it may be a key).
    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let lookup = self.lookup;
        let (value, inner) = self.inner.variant_seed(seed)?;
        Ok((value, Access { inner, lookup }))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Access<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        let seed = self.seed(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let v = self.visitor(visitor);
        self.inner.tuple_variant(len, v)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let v = self.visitor(visitor);
        self.inner.struct_variant(fields, v)
    }
}
