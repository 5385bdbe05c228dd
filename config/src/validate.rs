//! Semantic validation. Reports every problem found, each with its path.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use crate::error::{ConfigError, ConfigErrors};
use crate::model::{Backend, Config, Http2Limits, Model, Timeouts};

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
        ("body_read_timeout", l.body_read_timeout.get().is_zero()),
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
    validate_http2(&l.http2, &mut push);
    crate::observability::validate_observability(&cfg.access_log, cfg.tracing.as_ref(), &mut push);
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
    let by_name: HashMap<&str, &Backend> =
        cfg.backends.iter().map(|b| (b.name.as_str(), b)).collect();
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
        validate_model(&path, m, cfg, (&known, &by_name), &mut push);
    }
    for (name, src) in &cfg.request_labels {
        if src.header.is_some() == src.cookie.is_some() {
            push(
                format!("request_labels.{name}"),
                "set exactly one of header or cookie".into(),
            );
        }
        if let Some(h) = &src.header {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                push(
                    format!("request_labels.{name}.header"),
                    format!("{h:?} is not a header name"),
                );
            }
        }
    }
    if cfg.health_feeds.is_empty() {
        for (i, b) in cfg.backends.iter().enumerate() {
            if b.discovery
                .as_ref()
                .is_some_and(|d| d.kubernetes.require_warm)
            {
                push(
                    format!("backends[{i}].discovery.kubernetes.require_warm"),
                    "needs a health feed (health_feeds) to learn the model's warm state".into(),
                );
            }
            for (j, e) in b.endpoints.iter().enumerate() {
                if e.require_warm {
                    push(
                        format!("backends[{i}].endpoints[{j}].require_warm"),
                        "needs a health feed (health_feeds) to learn the model's warm state".into(),
                    );
                }
            }
        }
    }
    for (i, f) in cfg.health_feeds.iter().enumerate() {
        match (&f.kubernetes, f.url.is_empty()) {
            (Some(k), true) => k.check(&format!("health_feeds[{i}].kubernetes"), &mut push),
            (Some(_), false) => push(
                format!("health_feeds[{i}]"),
                "has both url and kubernetes; give one".into(),
            ),
            (None, _) => match f.url.parse::<http::Uri>() {
                Ok(u) if u.scheme_str() == Some("http") && u.host().is_some() => {}
                _ => push(
                    format!("health_feeds[{i}].url"),
                    format!("{:?} is not an http://host:port/path URL", f.url),
                ),
            },
        }
        if f.stale_after.get().is_zero() {
            push(
                format!("health_feeds[{i}].stale_after"),
                "must be greater than 0".into(),
            );
        }
    }
    if http::HeaderName::from_bytes(cfg.pin_header.as_bytes()).is_err() {
        push(
            "pin_header".into(),
            format!("{:?} is not a header name", cfg.pin_header),
        );
    }
    if cfg.models.is_empty() {
        push("models".into(), "at least one model is required".into());
    }
    let labels: Vec<&str> = cfg.request_labels.keys().map(String::as_str).collect();
    crate::admission::check(&cfg.admission, &labels, &mut push);
    let mut models: Vec<&str> = cfg.models.iter().map(|m| m.name.as_str()).collect();
    models.sort_unstable();
    crate::protocols::validate_path_routes(&cfg.path_routes, &models, &mut push);

    if errs.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errs))
    }
}

fn validate_backend(path: &str, b: &Backend, push: &mut impl FnMut(String, String)) {
    if let Some(bal) = &b.balancer {
        bal.check(&format!("{path}.balancer"), push);
    }
    match &b.discovery {
        Some(d) if b.endpoints.is_empty() => d
            .kubernetes
            .check(&format!("{path}.discovery.kubernetes"), push),
        Some(_) => push(
            format!("{path}.endpoints"),
            "a backend with discovery takes its endpoints from it; remove the list".into(),
        ),
        None if b.endpoints.is_empty() => push(
            format!("{path}.endpoints"),
            "at least one endpoint is required (or discovery)".into(),
        ),
        None => {}
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
        if e.require_warm && !(e.labels.contains_key("node") && e.labels.contains_key("model")) {
            push(
                format!("{epath}.require_warm"),
                "needs the labels `node` and `model` (and optionally `version`) to find the model's warm state".into(),
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

/// Bounds of `limits.http2`: a window is at least the spec's default (64KiB - 1) and at most
/// what one client may make the gateway buffer; counts are positive and at most 10000.
fn validate_http2(h: &Http2Limits, push: &mut impl FnMut(String, String)) {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    for (name, n) in [
        ("max_concurrent_streams", h.max_concurrent_streams),
        (
            "max_pending_accept_reset_streams",
            h.max_pending_accept_reset_streams,
        ),
    ] {
        if !(1..=10_000).contains(&n) {
            push(
                format!("limits.http2.{name}"),
                format!("{n} is not between 1 and 10000"),
            );
        }
    }
    for (name, size, max, max_text) in [
        (
            "initial_stream_window",
            h.initial_stream_window,
            16 * MIB,
            "16MiB",
        ),
        (
            "initial_connection_window",
            h.initial_connection_window,
            64 * MIB,
            "64MiB",
        ),
    ] {
        if !(64 * KIB - 1..=max).contains(&size.get()) {
            push(
                format!("limits.http2.{name}"),
                format!("{size} is not between 64KiB - 1 (65535) and {max_text}"),
            );
        }
    }
    if h.keepalive_ping_interval.is_some_and(|d| d.get().is_zero()) {
        push(
            "limits.http2.keepalive_ping_interval".into(),
            "must be greater than 0 (omit it for no pings)".into(),
        );
    }
    if h.keepalive_ping_timeout.get().is_zero() {
        push(
            "limits.http2.keepalive_ping_timeout".into(),
            "must be greater than 0".into(),
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

/// Largest weight in a split.
pub const MAX_WEIGHT: u32 = 1_000_000;

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
}

fn validate_model(
    path: &str,
    m: &Model,
    cfg: &Config,
    (known, by_name): (&[&str], &HashMap<&str, &Backend>),
    push: &mut impl FnMut(String, String),
) {
    let backend = |name: &str| by_name.get(name).copied();
    let unknown = |name: &str| format!("unknown backend {name:?} (known: {})", known.join(", "));
    match (&m.backend, m.variants.is_empty()) {
        (Some(_), false) => push(
            format!("{path}.variants"),
            "set either backend or variants, not both".into(),
        ),
        (None, true) => push(path.to_string(), "set backend or variants".into()),
        (Some(b), true) => {
            if backend(b).is_none() {
                push(format!("{path}.backend"), unknown(b));
            }
            if !m.routes.is_empty() {
                push(
                    format!("{path}.routes"),
                    "routes choose among variants; declare variants instead of backend".into(),
                );
            }
            return;
        }
        (None, false) => {}
    }
    let mut names = HashSet::new();
    for (j, v) in m.variants.iter().enumerate() {
        let vpath = format!("{path}.variants[{j}]");
        if !is_token(&v.name) {
            push(
                format!("{vpath}.name"),
                format!("{:?} must be 1-64 letters, digits, '-', '_' or '.'", v.name),
            );
        } else if !names.insert(v.name.as_str()) {
            push(
                format!("{vpath}.name"),
                format!("duplicate variant {:?}", v.name),
            );
        }
        match backend(&v.backend) {
            None => push(format!("{vpath}.backend"), unknown(&v.backend)),
            Some(b) => {
                let matching = b
                    .endpoints
                    .iter()
                    .filter(|e| {
                        v.selector
                            .iter()
                            .all(|(k, val)| e.labels.get(k) == Some(val.as_str()))
                    })
                    .count();
                if matching == 0 && b.discovery.is_none() {
                    push(
                        format!("{vpath}.selector"),
                        format!("matches no endpoint of backend {:?}", b.name),
                    );
                }
            }
        }
    }
    if m.routes.is_empty() {
        push(
            format!("{path}.routes"),
            "a model with variants needs at least one route".into(),
        );
    }
    let variant_known = |name: &str| m.variants.iter().any(|v| v.name == name);
    let variant_list = || {
        m.variants
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (r, route) in m.routes.iter().enumerate() {
        let rpath = format!("{path}.routes[{r}]");
        if route.split.is_empty() {
            push(
                format!("{rpath}.split"),
                "at least one variant is required".into(),
            );
        }
        let mut total: u64 = 0;
        let mut seen = HashSet::new();
        for (k, e) in route.split.iter().enumerate() {
            if !variant_known(&e.variant) {
                push(
                    format!("{rpath}.split[{k}].variant"),
                    format!(
                        "unknown variant {:?} (known: {})",
                        e.variant,
                        variant_list()
                    ),
                );
            } else if !seen.insert(e.variant.as_str()) {
                push(
                    format!("{rpath}.split[{k}].variant"),
                    format!("variant {:?} appears twice", e.variant),
                );
            }
            if e.weight > MAX_WEIGHT {
                push(
                    format!("{rpath}.split[{k}].weight"),
                    format!("{} is more than {MAX_WEIGHT}", e.weight),
                );
            }
            total += u64::from(e.weight);
        }
        if !route.split.is_empty() && total == 0 {
            push(format!("{rpath}.split"), "the weights add up to 0".into());
        }
        if let Some(st) = &route.sticky {
            if st.header.is_some() == st.cookie.is_some() {
                push(
                    format!("{rpath}.sticky"),
                    "set exactly one of header or cookie".into(),
                );
            }
        }
        if let Some(sh) = &route.shadow {
            if !variant_known(&sh.variant) {
                push(
                    format!("{rpath}.shadow.variant"),
                    format!(
                        "unknown variant {:?} (known: {})",
                        sh.variant,
                        variant_list()
                    ),
                );
            }
            if !(0.0..=100.0).contains(&sh.percent) {
                push(
                    format!("{rpath}.shadow.percent"),
                    format!("{} is not between 0 and 100", sh.percent),
                );
            }
            if sh.max_concurrency == 0 {
                push(
                    format!("{rpath}.shadow.max_concurrency"),
                    "must be at least 1".into(),
                );
            }
        }
        for (kind, list) in [
            ("headers", &route.matches.headers),
            ("cookies", &route.matches.cookies),
            ("labels", &route.matches.labels),
        ] {
            for (k, vm) in list.iter().enumerate() {
                let mpath = format!("{rpath}.match.{kind}[{k}]");
                let set = [
                    vm.exact.is_some(),
                    vm.prefix.is_some(),
                    vm.regex.is_some(),
                    vm.present.is_some(),
                ]
                .iter()
                .filter(|b| **b)
                .count();
                if set != 1 {
                    push(
                        mpath.clone(),
                        "set exactly one of exact, prefix, regex or present".into(),
                    );
                }
                if let Some(re) = &vm.regex {
                    if let Err(e) = regex_lite::Regex::new(&format!("^(?:{re})$")) {
                        push(format!("{mpath}.regex"), format!("invalid regex: {e}"));
                    }
                }
                if kind == "labels" && !cfg.request_labels.contains_key(&vm.name) {
                    let names: Vec<&str> = cfg.request_labels.keys().map(String::as_str).collect();
                    push(
                        format!("{mpath}.name"),
                        format!(
                            "unknown request label {:?} (declared in request_labels: {})",
                            vm.name,
                            names.join(", ")
                        ),
                    );
                }
                if kind == "headers" && http::HeaderName::from_bytes(vm.name.as_bytes()).is_err() {
                    push(
                        format!("{mpath}.name"),
                        format!("{:?} is not a header name", vm.name),
                    );
                }
            }
        }
    }
}
