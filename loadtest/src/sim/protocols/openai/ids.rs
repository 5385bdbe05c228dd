//! Response ids.

/// A random id with `prefix`, or one built from the request id in deterministic mode.
pub fn response_id(prefix: &str, deterministic: bool, request_id: Option<&str>) -> String {
    if deterministic {
        let rid: String = request_id
            .unwrap_or("0")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(64)
            .collect();
        format!("{prefix}-{rid}")
    } else {
        format!("{prefix}-{:016x}", rand::random::<u64>())
    }
}
