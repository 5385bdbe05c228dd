//! Tests of the base URL's checks and of file URLs.

use std::path::Path;

use super::*;

#[test]
fn urls_are_encoded() {
    let s = Client::new("http://h:1/models/x/", None).unwrap();
    assert_eq!(s.url("a b/c%.bin"), "http://h:1/models/x/a%20b/c%25.bin");
    let err = |url: &str| match Client::new(url, None) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    assert_eq!(err("https://h/x"), "");
    assert!(err("http://h/x?y").contains("query"));
    assert!(err("ftp://h/x").contains("not an http"));
    let missing = Client::new("https://h/x", Some(Path::new("/nonexistent/ca.pem")));
    assert!(missing
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("ca_file /nonexistent/ca.pem"));
}
