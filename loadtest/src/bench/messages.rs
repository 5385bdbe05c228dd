//! Short, bounded error messages of failed requests.

use std::time::Duration;

/// The longest error message kept in a record.
pub const MAX_ERROR: usize = 300;

/// A timeout as written in messages: `30 s` for whole seconds, else milliseconds.
pub fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// An error and its sources, joined with `: `.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

/// `503: <error.message>` from an OpenAI error body, else the start of the body.
pub fn status_message(status: http::StatusCode, body: &[u8]) -> String {
    let msg = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .and_then(|e| e.get("message").or(Some(e)))
                .and_then(|m| m.as_str().map(str::to_owned))
                .or_else(|| v.get("message").and_then(|m| m.as_str().map(str::to_owned)))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if msg.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {msg}", status.as_u16())
    }
}

/// At most [`MAX_ERROR`] bytes, cut at a character boundary.
pub fn truncate(mut s: String) -> String {
    if s.len() > MAX_ERROR {
        let mut cut = MAX_ERROR;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            status_message(
                http::StatusCode::SERVICE_UNAVAILABLE,
                br#"{"error":{"message":"busy","type":"x"}}"#
            ),
            "HTTP 503: busy"
        );
        assert_eq!(
            status_message(http::StatusCode::NOT_FOUND, b"no such route"),
            "HTTP 404: no such route"
        );
        assert_eq!(
            status_message(http::StatusCode::BAD_GATEWAY, b""),
            "HTTP 502"
        );
        let long = "é".repeat(400);
        let t = truncate(long);
        assert!(t.len() <= MAX_ERROR + '…'.len_utf8());
        assert!(t.ends_with('…'));
    }
}
