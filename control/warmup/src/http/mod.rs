//! The HTTP source: `GET <base>/<path>` with `Range` (or whole files from servers that ignore
//! it), over the pooled client of [`crate::client`].

mod range;
mod response;
mod source;
mod whole;

pub(crate) use source::{HttpSource, RANGES_NO, RANGES_UNKNOWN, RANGES_YES};

#[cfg(test)]
mod tests;
