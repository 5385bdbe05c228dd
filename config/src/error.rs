use std::fmt;

/// One problem in a config file: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path with indices, e.g. `models[1].backend`; empty for the document itself.
    pub path: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl ConfigError {
    /// An error of the YAML parser (syntax, type or unknown field) at `path`, with its line and
    /// column.
    pub(crate) fn from_yaml(path: String, inner: &serde_yaml_ng::Error) -> ConfigError {
        let mut reason = inner.to_string();
        // serde_yaml_ng may lead with the path itself; it is shown once, in front.
        if let Some((head, rest)) = reason.split_once(": ") {
            if !head.is_empty() && !head.contains(' ') && path.starts_with(head) {
                reason = rest.to_string();
            }
        }
        if let Some(loc) = inner.location() {
            // serde_yaml_ng appends its own location; keep one, in a fixed form.
            if let Some(cut) = reason.find(" at line ") {
                reason.truncate(cut);
            }
            reason = format!("{reason} (line {}, column {})", loc.line(), loc.column());
        }
        ConfigError { path, reason }
    }
}

/// All problems found in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Why a config file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read at all.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid config.
    #[error("{path} is invalid:\n{errors}")]
    Invalid { path: String, errors: ConfigErrors },
}
