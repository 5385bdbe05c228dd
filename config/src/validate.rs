//! Semantic validation. Reports every problem found, each with its path.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::error::{ConfigError, ConfigErrors};
use crate::model::{Backend, Config, Timeouts};

/// Checks cross-references and values that the schema alone cannot express.
pub fn validate(cfg: &Config) -> Result<(), ConfigErrors> {
    let mut errs = Vec::new();
    let mut push = |path: String, reason: String| errs.push(ConfigError { path, reason });

    for (name, l) in [
        ("data", &cfg.listeners.data),
        ("admin", &cfg.listeners.admin),
    ] {
        if let Err(e) = l.address.parse::<SocketAddr>() {
            push(
                format!("listeners.{name}.address"),
                format!("{:?} is not an IP:PORT address ({e})", l.address),
            );
        }
    }
    if cfg.listeners.data.address == cfg.listeners.admin.address
        && !cfg.listeners.data.address.ends_with(":0")
    {
        push(
            "listeners.admin.address".into(),
            format!(
                "same address as listeners.data.address ({})",
                cfg.listeners.admin.address
            ),
        );
    }
    if cfg.limits.max_body_bytes.get() == 0 {
        push(
            "limits.max_body_bytes".into(),
            "must be greater than 0".into(),
        );
    }

    let mut backend_names = HashSet::new();
    for (i, b) in cfg.backends.iter().enumerate() {
        let path = format!("backends[{i}]");
        if b.name.is_empty() {
            push(format!("{path}.name"), "must not be empty".into());
        } else if !backend_names.insert(b.name.as_str()) {
            push(
                format!("{path}.name"),
                format!("duplicate backend name {:?}", b.name),
            );
        }
        validate_backend(&path, b, &mut push);
    }
    if cfg.backends.is_empty() {
        push("backends".into(), "at least one backend is required".into());
    }

    let mut known: Vec<&str> = cfg.backends.iter().map(|b| b.name.as_str()).collect();
    known.sort_unstable();
    let mut model_names = HashSet::new();
    for (i, m) in cfg.models.iter().enumerate() {
        let path = format!("models[{i}]");
        if m.name.is_empty() {
            push(format!("{path}.name"), "must not be empty".into());
        } else if !model_names.insert(m.name.as_str()) {
            push(
                format!("{path}.name"),
                format!("duplicate model name {:?}", m.name),
            );
        }
        if !backend_names.contains(m.backend.as_str()) {
            push(
                format!("{path}.backend"),
                format!(
                    "unknown backend {:?} (known: {})",
                    m.backend,
                    known.join(", ")
                ),
            );
        }
    }
    if cfg.models.is_empty() {
        push("models".into(), "at least one model is required".into());
    }

    if errs.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errs))
    }
}

fn validate_backend(path: &str, b: &Backend, push: &mut impl FnMut(String, String)) {
    if b.endpoints.is_empty() {
        push(
            format!("{path}.endpoints"),
            "at least one endpoint is required".into(),
        );
    }
    let mut urls = HashSet::new();
    for (j, e) in b.endpoints.iter().enumerate() {
        let epath = format!("{path}.endpoints[{j}]");
        if let Err(reason) = check_url(&e.url) {
            push(format!("{epath}.url"), reason);
        } else if !urls.insert(e.url.trim_end_matches('/')) {
            push(
                format!("{epath}.url"),
                format!("duplicate endpoint {:?}", e.url),
            );
        }
        for k in e.labels.keys() {
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_./".contains(&c))
            {
                push(
                    format!("{epath}.labels"),
                    format!("label name {k:?} must be non-empty and use only letters, digits, '-', '_', '.', '/'"),
                );
            }
        }
    }
    validate_timeouts(&format!("{path}.timeouts"), &b.timeouts, push);
    if b.limits.max_in_flight_per_endpoint == Some(0) {
        push(
            format!("{path}.limits.max_in_flight_per_endpoint"),
            "must be at least 1 (omit it for no limit)".into(),
        );
    }
}

fn validate_timeouts(path: &str, t: &Timeouts, push: &mut impl FnMut(String, String)) {
    for (name, d) in [
        ("connect", t.connect),
        ("first_token", t.first_token),
        ("idle", t.idle),
        ("total", t.total),
    ] {
        if d.get().is_zero() {
            push(format!("{path}.{name}"), "must be greater than 0".into());
        }
    }
    if t.first_token > t.total {
        push(
            format!("{path}.first_token"),
            format!("{} is longer than total ({})", t.first_token, t.total),
        );
    }
}

/// An endpoint URL must be `http://host:port[/prefix]` with no query or fragment.
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a valid URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!("{url:?}: https upstreams are not supported yet"));
        }
        Some(other) => return Err(format!("{url:?}: unsupported scheme {other:?} (use http)")),
        None => return Err(format!("{url:?} has no scheme (write http://{url})")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("{url:?} must not have a query string"));
    }
    Ok(())
}
