//! The config loader: `infergate_config::Config::from_yaml` on any text, then the gateway's
//! compiler (`infergate_gateway::compile::Compiler`), which builds the routing table without
//! touching the network.
//!
//! - Loading never panics, and every error it reports has a reason.
//! - A config that loads writes back (as JSON, which YAML reads) to text that loads as the same
//!   config, once the admin token, which is written as `"***"`, is put back and each `${` of
//!   a value is escaped as `$${` (a value may hold a literal `${`, written `$${` in YAML).
//! - A config that loads compiles, and compiling it again with the same compiler rebuilds
//!   nothing. TLS file paths of backends are dropped before compiling, so that no file named
//!   by the input is read.

use std::sync::Arc;

use infergate_config::{Config, UpstreamTls};
use infergate_gateway::compile::{Compiler, Rebuilt};
use infergate_gateway::metrics::Metrics;

/// Loads `text` as a config and, when it is valid, compiles it.
pub fn check(text: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Ok(());
    };
    let cfg = match Config::from_yaml(text) {
        Ok(cfg) => cfg,
        Err(errs) => {
            return match errs.0.iter().find(|e| e.reason.trim().is_empty()) {
                Some(e) => Err(format!("error at {:?} without a reason", e.path)),
                None => Ok(()),
            };
        }
    };
    let json = written(&cfg)?;
    match Config::from_yaml(&json) {
        Ok(again) if again == cfg => {}
        Ok(again) => {
            return Err(format!(
                "loaded {cfg:?}\nwrote {json}\nloaded back {again:?}"
            ))
        }
        Err(e) => return Err(format!("wrote {json}\nwhich does not load: {e}")),
    }
    let mut cfg = cfg;
    for b in &mut cfg.backends {
        b.tls = UpstreamTls::default();
    }
    let cfg = Arc::new(cfg);
    let metrics = Metrics::new().map_err(|e| format!("metrics: {e}"))?;
    let mut compiler = Compiler::new(Arc::new(metrics));
    compiler
        .compile(&cfg)
        .map_err(|e| format!("a valid config does not compile:\n{e}"))?;
    match compiler.compile_counted(&cfg) {
        Ok((_, r)) if r == Rebuilt::default() => Ok(()),
        Ok((_, r)) => Err(format!("the same config again rebuilt {r:?}")),
        Err(e) => Err(format!("the same config again does not compile:\n{e}")),
    }
}

/// `cfg` written as JSON, with the admin token (written as `"***"`) put back, as YAML that
/// loads as `cfg`.
fn written(cfg: &Config) -> Result<String, String> {
    let mut v = serde_json::to_value(cfg).map_err(|e| format!("cannot write {cfg:?}: {e}"))?;
    if let Some(secret) = &cfg.listeners.admin.token {
        let token = v.pointer_mut("/listeners/admin/token");
        match token {
            Some(t) if *t == "***" => *t = secret.0.clone().into(),
            other => return Err(format!("the admin token is written as {other:?}")),
        }
    }
    escape(&mut v);
    Ok(v.to_string())
}

/// Writes each `${` of a string value as `$${`, which loads as a literal `${` (environment
/// references are expanded in values, not in keys).
fn escape(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains("${") => *s = s.replace("${", "$${"),
        serde_json::Value::Array(a) => a.iter_mut().for_each(escape),
        serde_json::Value::Object(o) => o.values_mut().for_each(escape),
        _ => {}
    }
}
