//! Why a connection was refused: the `reason` of `infergate_connections_closed_total`.

/// Why hyper ended a connection, when it was for breaking a limit (the value of `reason` in
/// `infergate_connections_closed_total`); `None` for an ordinary end or an I/O error.
///
/// When h2 closes a connection itself it returns the code of the GOAWAY it sent, but not its
/// debug data (`too_many_resets`, `too_many_continuations`, ...), so all its refusals of
/// abusive load share `ENHANCE_YOUR_CALM`. The code is read from the error's debug text (the
/// gateway does not name h2's error type); `gateway/tests/http2_abuse.rs` checks it.
pub(super) fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let e = e.downcast_ref::<hyper::Error>()?;
    let source = std::error::Error::source(e).map(|s| format!("{s:?}"));
    let text = source.as_deref().unwrap_or_default();
    if e.is_timeout() {
        return Some(if text.contains("KeepAliveTimedOut") {
            "ping_timeout"
        } else {
            "header_timeout"
        });
    }
    // h2's error for a GOAWAY it sent: `Error { kind: GoAway(b"", REASON, Library) }`.
    if !(text.contains("GoAway(") && text.contains("Library)")) {
        return None;
    }
    Some(
        [
            ("ENHANCE_YOUR_CALM", "enhance_your_calm"),
            ("FRAME_SIZE_ERROR", "frame_size_error"),
            ("FLOW_CONTROL_ERROR", "flow_control_error"),
            ("COMPRESSION_ERROR", "compression_error"),
        ]
        .into_iter()
        .find(|(code, _)| text.contains(code))
        .map_or("protocol_error", |(_, reason)| reason),
    )
}
