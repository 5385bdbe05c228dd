//! The manifest: the list of a model version's files with their sizes and SHA-256.

use serde::{Deserialize, Serialize};

use crate::error::WarmupError;

/// A model version's files: `{"files":[{"path":"…","size":…,"sha256":"<hex>"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The files, sorted by path when written by [`write_manifest`](crate::write_manifest).
    pub files: Vec<ManifestEntry>,
}

/// One file of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Relative path with `/` separators; no `..`, `.`, empty component or leading `/`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, 64 hex digits (lower case once parsed).
    pub sha256: String,
}

impl Manifest {
    /// Parses and validates a manifest (see [`Manifest::validate`]); SHA-256 digests are
    /// normalised to lower case. `location` (URL or path) is named in errors.
    pub fn from_slice(bytes: &[u8], location: &str) -> Result<Manifest, WarmupError> {
        let mut manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| WarmupError::InvalidManifest {
                location: location.to_string(),
                reason: format!("not a valid manifest: {e}"),
            })?;
        for entry in &mut manifest.files {
            entry.sha256.make_ascii_lowercase();
        }
        manifest.validate(location)?;
        Ok(manifest)
    }

    /// The sum of all file sizes ([`Manifest::validate`] refuses a manifest whose sum does not
    /// fit; past `u64::MAX` it stays there).
    pub fn total_size(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |total, f| total.saturating_add(f.size))
    }
}
