//! The command line as recorded: secrets replaced.

use crate::bench::spec::is_secret_header;

/// The command line with secrets replaced by `***`.
pub fn redact(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut next_secret = false;
    let mut next_header = false;
    for a in argv {
        if next_secret {
            out.push("***".to_owned());
            next_secret = false;
            continue;
        }
        if next_header {
            out.push(redact_header(a));
            next_header = false;
            continue;
        }
        if a == "--api-key" {
            next_secret = true;
            out.push(a.clone());
        } else if a.starts_with("--api-key=") {
            out.push("--api-key=***".to_owned());
        } else if a == "-H" || a == "--header" {
            next_header = true;
            out.push(a.clone());
        } else if let Some(h) = a.strip_prefix("--header=") {
            out.push(format!("--header={}", redact_header(h)));
        } else if let Some(h) = a.strip_prefix("-H").filter(|h| !h.is_empty()) {
            out.push(format!("-H{}", redact_header(h)));
        } else {
            out.push(a.clone());
        }
    }
    out
}

pub fn redact_header(h: &str) -> String {
    match h.split_once(':') {
        Some((name, _)) if is_secret_header(name.trim()) => format!("{}: ***", name.trim()),
        _ => h.to_owned(),
    }
}
