//! Tests of the checks of a range answer.

use hyper::header::{HeaderMap, CONTENT_RANGE};

use super::response::check_content_range;

#[test]
fn content_range_checks() {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_RANGE, "bytes 10-19/100".parse().unwrap());
    assert!(check_content_range(&h, 10, 20, 100).is_ok());
    assert!(check_content_range(&h, 10, 20, 101)
        .unwrap_err()
        .contains("manifest says 101"));
    assert!(check_content_range(&h, 0, 10, 100).is_err());
    h.insert(CONTENT_RANGE, "bytes 10-19/*".parse().unwrap());
    assert!(check_content_range(&h, 10, 20, 100).is_ok());
}
