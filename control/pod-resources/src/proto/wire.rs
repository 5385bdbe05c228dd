//! Protocol Buffers wire format: varints, field keys, length-delimited fields, and skipping
//! unknown fields of every wire type. Every read is bounded by the input; nothing panics on
//! bad input.

use std::fmt;

/// Largest message read or written: 16 MiB.
pub const MAX_MESSAGE: usize = 16 << 20;

/// How deeply groups (wire types 3 and 4) may nest in a skipped field.
const MAX_GROUP_DEPTH: usize = 32;

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const START_GROUP: u8 = 3;
pub const END_GROUP: u8 = 4;
pub const FIXED32: u8 = 5;

/// Why a message could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a field.
    Truncated { at: usize },
    /// A varint of more than 10 bytes.
    VarintTooLong { at: usize },
    /// Field number 0, or one above 2^29 - 1.
    BadFieldNumber { at: usize, field: u64 },
    /// Wire type 6 or 7, or an end-group with no start.
    BadWireType { at: usize, wire_type: u8 },
    /// A known field written with another wire type than its declared one.
    WrongWireType {
        message: &'static str,
        field: u32,
        wire_type: u8,
    },
    /// Groups nested deeper than 32 levels.
    TooDeep { at: usize },
    /// A string field that is not UTF-8.
    NotUtf8 { message: &'static str, field: u32 },
    /// The message is over [`MAX_MESSAGE`].
    TooLarge { len: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { at } => write!(f, "truncated field at byte {at}"),
            DecodeError::VarintTooLong { at } => {
                write!(f, "varint longer than 10 bytes at byte {at}")
            }
            DecodeError::BadFieldNumber { at, field } => {
                write!(f, "invalid field number {field} at byte {at}")
            }
            DecodeError::BadWireType { at, wire_type } => {
                write!(f, "invalid wire type {wire_type} at byte {at}")
            }
            DecodeError::WrongWireType {
                message,
                field,
                wire_type,
            } => write!(
                f,
                "{message} field {field} has wire type {wire_type}, not the declared one"
            ),
            DecodeError::TooDeep { at } => {
                write!(
                    f,
                    "groups nested over {MAX_GROUP_DEPTH} levels at byte {at}"
                )
            }
            DecodeError::NotUtf8 { message, field } => {
                write!(f, "{message} field {field} is not UTF-8")
            }
            DecodeError::TooLarge { len } => write!(
                f,
                "message of {len} bytes is over the limit of {MAX_MESSAGE} bytes"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A field's key: its number and wire type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub field: u32,
    pub wire_type: u8,
}

/// Reads one message's fields in order.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Where `buf` starts in the outermost message, for error positions.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole message; fails on one over [`MAX_MESSAGE`].
    pub fn new(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() > MAX_MESSAGE {
            return Err(DecodeError::TooLarge { len: buf.len() });
        }
        Ok(Reader {
            buf,
            pos: 0,
            base: 0,
        })
    }

    /// A reader over an embedded message read with [`Reader::bytes`] from this one.
    pub fn nested(&self, inner: &'a [u8]) -> Reader<'a> {
        Reader {
            buf: inner,
            pos: 0,
            base: self.base + self.pos - inner.len(),
        }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn at(&self) -> usize {
        self.base + self.pos
    }

    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.at();
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(DecodeError::Truncated { at: start });
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong { at: start })
    }

    /// The next field's key.
    pub fn key(&mut self) -> Result<Key, DecodeError> {
        let at = self.at();
        let k = self.varint()?;
        let field = k >> 3;
        let wire_type = (k & 7) as u8;
        if field == 0 || field > (1 << 29) - 1 {
            return Err(DecodeError::BadFieldNumber { at, field });
        }
        if wire_type > FIXED32 {
            return Err(DecodeError::BadWireType { at, wire_type });
        }
        Ok(Key {
            field: field as u32,
            wire_type,
        })
    }

    /// A length-delimited field's bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let at = self.at();
        let len = self.varint()?;
        let left = self.buf.len() - self.pos;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= left)
            .ok_or(DecodeError::Truncated { at })?;
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    /// A string field of `message`, checked for the declared wire type.
    pub fn string(&mut self, message: &'static str, key: Key) -> Result<String, DecodeError> {
        let raw = self.len_field(message, key)?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::NotUtf8 {
            message,
            field: key.field,
        })
    }

    /// A length-delimited field of `message` (string, bytes or embedded message).
    pub fn len_field(&mut self, message: &'static str, key: Key) -> Result<&'a [u8], DecodeError> {
        if key.wire_type != LEN {
            return Err(DecodeError::WrongWireType {
                message,
                field: key.field,
                wire_type: key.wire_type,
            });
        }
        self.bytes()
    }

    fn advance(&mut self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(DecodeError::Truncated { at: self.at() });
        }
        self.pos += n;
        Ok(())
    }

    /// Skips the value of a field this reader does not know.
    pub fn skip(&mut self, key: Key) -> Result<(), DecodeError> {
        let mut depth = 0usize;
        let mut wire_type = key.wire_type;
        loop {
            match wire_type {
                VARINT => {
                    self.varint()?;
                }
                FIXED64 => self.advance(8)?,
                LEN => {
                    self.bytes()?;
                }
                FIXED32 => self.advance(4)?,
                START_GROUP => {
                    depth += 1;
                    if depth > MAX_GROUP_DEPTH {
                        return Err(DecodeError::TooDeep { at: self.at() });
                    }
                }
                _ => {
                    // END_GROUP: closes the innermost open group, if any.
                    if depth == 0 {
                        return Err(DecodeError::BadWireType {
                            at: self.at(),
                            wire_type,
                        });
                    }
                    depth -= 1;
                }
            }
            if depth == 0 {
                return Ok(());
            }
            if self.at_end() {
                return Err(DecodeError::Truncated { at: self.at() });
            }
            wire_type = self.key()?.wire_type;
        }
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

/// A length-delimited field.
pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A string field; proto3 leaves out empty strings.
pub fn put_string(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(out, field, s.as_bytes());
    }
}

/// An embedded message written by `body`.
pub fn put_message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    put_bytes(out, field, &inner);
}
