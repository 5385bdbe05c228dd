//! Semantic validation. Reports every problem found, each with its path.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::error::{ConfigError, ConfigErrors};
use crate::model::{Backend, Config, Timeouts};

/// Checks cross-references and values that the schema alone cannot express.
pub fn validate(cfg: &Config) -> Result<(), ConfigErrors> {
    let mut errs = Vec::new();
    let mut push = |path: String, reason: String| errs.push(ConfigError { path, reason });

    for (name, address) in [
        ("data", &cfg.listeners.data.address),
        ("admin", &cfg.listeners.admin.address),
    ] {
        if let Err(e) = address.parse::<SocketAddr>() {
            push(
                format!("listeners.{name}.address"),
                format!("{address:?} is not an IP:PORT address ({e})"),
            );
        }
    }
    let admin = &cfg.listeners.admin;
    if admin.token.is_some() && admin.token_env.is_some() {
        push(
            "listeners.admin.token_env".into(),
            "set either token or token_env, not both".into(),
        );
    }
    if admin.token.as_ref().is_some_and(|t| t.0.len() < 16) {
        push(
            "listeners.admin.token".into(),
            "must be at least 16 characters".into(),
        );
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
    let l = &cfg.limits;
    for (name, bad) in [
        ("max_body_bytes", l.max_body_bytes.get() == 0),
        ("max_header_bytes", l.max_header_bytes.get() < 1024),
        ("max_headers", l.max_headers == 0),
        ("header_read_timeout", l.header_read_timeout.get().is_zero()),
        ("keepalive_timeout", l.keepalive_timeout.get().is_zero()),
        ("max_connections", l.max_connections == 0),
        ("max_in_flight", l.max_in_flight == 0),
    ] {
        if bad {
            let min = if name == "max_header_bytes" {
                "at least 1KiB"
            } else {
                "greater than 0"
            };
            push(format!("limits.{name}"), format!("must be {min}"));
        }
    }
    if cfg.shutdown.drain_timeout.get().is_zero() {
        push(
            "shutdown.drain_timeout".into(),
            "must be greater than 0".into(),
        );
    }
    let rb = &cfg.retry_budget;
    if !(0.0..=1.0).contains(&rb.ratio) {
        push(
            "retry_budget.ratio".into(),
            format!("{} is not a fraction between 0 and 1", rb.ratio),
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
    if !(1..=10).contains(&b.retry.max_attempts) {
        push(
            format!("{path}.retry.max_attempts"),
            format!("{} is not between 1 and 10", b.retry.max_attempts),
        );
    }
    for (k, code) in b.retry.on_status.iter().enumerate() {
        if !(400..=599).contains(code) {
            push(
                format!("{path}.retry.on_status[{k}]"),
                format!("{code} is not an error status (400-599)"),
            );
        }
    }
    let o = &b.outlier;
    if o.max_ejected_percent > 100 {
        push(
            format!("{path}.outlier.max_ejected_percent"),
            format!("{} is more than 100", o.max_ejected_percent),
        );
    }
    if o.base_ejection.get().is_zero() {
        push(
            format!("{path}.outlier.base_ejection"),
            "must be greater than 0".into(),
        );
    }
    if o.base_ejection > o.max_ejection {
        push(
            format!("{path}.outlier.base_ejection"),
            format!(
                "{} is longer than max_ejection ({})",
                o.base_ejection, o.max_ejection
            ),
        );
    }
    if b.tls.cert_file.is_some() != b.tls.key_file.is_some() {
        push(
            format!("{path}.tls"),
            "cert_file and key_file go together (mutual TLS needs both)".into(),
        );
    }
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
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!(
                "{url:?}: unsupported scheme {other:?} (use http or https)"
            ))
        }
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
