//! Reloads that re-parse only what changed.
//!
//! A cluster-sized config is mostly its `backends` and `models` lists, and a reload usually
//! changes a few of their items or none. [`Incremental`] keeps the text of each item it parsed
//! last time with the value it gave; on the next document it parses the rest of the file (the
//! skeleton: listeners, limits, feeds…) and only the list items whose text is new, and clones
//! the others from the previous result. The outcome is the same [`Config`] a whole parse gives
//! (a differential test holds it to that): when the document is not plain block-style YAML
//! (see [`split`]), or anything fails, it is parsed whole, so errors keep their whole-document
//! path and line.
//!
//! Values are looked up by the item's exact text. Environment variables are expanded per item
//! with the same lookup, so a reused item is the one the same text gave before: the caller
//! must use one lookup for the life of an [`Incremental`] (the process environment does not
//! change under a running process).

mod split;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::error::ConfigErrors;
use crate::{env, validate, Backend, Config, Model};

/// A parser that remembers its last document; see the module documentation.
#[derive(Default)]
pub struct Incremental {
    last: Option<Last>,
}

struct Last {
    text: String,
    backends: Vec<std::ops::Range<usize>>,
    models: Vec<std::ops::Range<usize>>,
    config: Arc<Config>,
}

/// How much of the last parse a document reused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reuse {
    /// List items taken from the last parse.
    pub reused: usize,
    /// List items parsed (all of them when the document was parsed whole).
    pub parsed: usize,
    /// Whether the document was parsed whole.
    pub whole: bool,
}

impl Incremental {
    /// Parses and validates `text` like [`Config::from_yaml_env`], reusing the list items whose
    /// text has not changed since the last successful call. A failed parse leaves the
    /// remembered document as it was.
    pub fn parse(
        &mut self,
        text: &str,
        lookup: env::Lookup<'_>,
    ) -> Result<(Arc<Config>, Reuse), ConfigErrors> {
        let (cfg, reuse, items) = match self.try_split(text, lookup) {
            Some(done) => done,
            None => {
                let cfg: Config = env::from_yaml(text, lookup)?;
                let n = cfg.backends.len() + cfg.models.len();
                let reuse = Reuse {
                    reused: 0,
                    parsed: n,
                    whole: true,
                };
                (cfg, reuse, None)
            }
        };
        validate(&cfg)?;
        let config = Arc::new(cfg);
        self.last = items.map(|(backends, models)| Last {
            text: text.to_owned(),
            backends,
            models,
            config: config.clone(),
        });
        Ok((config, reuse))
    }

    /// The split parse, or `None` when the document must be parsed whole (it cannot be split,
    /// or some part of it fails: the whole parse then reports the error with its full path).
    #[allow(clippy::type_complexity)]
    fn try_split(
        &self,
        text: &str,
        lookup: env::Lookup<'_>,
    ) -> Option<(Config, Reuse, Option<(Vec<Range>, Vec<Range>)>)> {
        let parts = split::split(text)?;
        let mut cfg: Config = env::from_yaml(&parts.skeleton, lookup).ok()?;
        let mut reuse = Reuse::default();
        let last = self.last.as_ref();
        reuse.parsed += parts.backends.is_none() as usize * cfg.backends.len()
            + parts.models.is_none() as usize * cfg.models.len();
        if let Some(texts) = &parts.backends {
            cfg.backends = items::<Backend>(
                texts,
                last.map(|l| (l.text.as_str(), &l.backends[..], &l.config.backends[..])),
                lookup,
                &mut reuse,
            )?;
        }
        if let Some(texts) = &parts.models {
            cfg.models = items::<Model>(
                texts,
                last.map(|l| (l.text.as_str(), &l.models[..], &l.config.models[..])),
                lookup,
                &mut reuse,
            )?;
        }
        // Items of a list that was not cut are not remembered: the next parse reads them again.
        let ranges = |v: &Option<Vec<&str>>| {
            v.iter()
                .flatten()
                .map(|s| offset(text, s))
                .collect::<Vec<_>>()
        };
        let kept = (ranges(&parts.backends), ranges(&parts.models));
        Some((cfg, reuse, Some(kept)))
    }
}

type Range = std::ops::Range<usize>;

/// `sub`'s place in `text` (it is a slice of it).
fn offset(text: &str, sub: &str) -> Range {
    let start = sub.as_ptr() as usize - text.as_ptr() as usize;
    start..start + sub.len()
}

/// The values of `texts`, each taken from `last` (the previous text, its items' ranges and
/// their values) when the same text was there, else parsed alone.
fn items<T: DeserializeOwned + Clone>(
    texts: &[&str],
    last: Option<(&str, &[Range], &[T])>,
    lookup: env::Lookup<'_>,
    reuse: &mut Reuse,
) -> Option<Vec<T>> {
    let mut by_text: Option<HashMap<&str, usize>> = None;
    let mut out = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let found = last.and_then(|(prev, ranges, values)| {
            // Same place first (the usual case), then anywhere (items moved or inserted).
            let same = ranges.get(i).filter(|r| &prev[(*r).clone()] == *text);
            let at = match same {
                Some(_) => Some(i),
                None => by_text
                    .get_or_insert_with(|| {
                        ranges
                            .iter()
                            .enumerate()
                            .map(|(k, r)| (&prev[r.clone()], k))
                            .collect()
                    })
                    .get(text)
                    .copied(),
            };
            at.and_then(|k| values.get(k))
        });
        match found {
            Some(v) => {
                reuse.reused += 1;
                out.push(v.clone());
            }
            None => {
                let mut one: Vec<T> = env::from_yaml(text, lookup).ok()?;
                if one.len() != 1 {
                    return None;
                }
                reuse.parsed += 1;
                out.extend(one.pop());
            }
        }
    }
    Some(out)
}
