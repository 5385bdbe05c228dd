#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn the_prompt_map_is_bounded() {
    let map = PromptMap::default();
    let now = Instant::now();
    for i in 0..PROMPT_CAPACITY + 10 {
        map.remember(format!("p{i}"), "http://a", now);
    }
    assert_eq!(map.len(), PROMPT_CAPACITY);
    assert_eq!(map.endpoint("p0", now), None);
    assert!(map
        .endpoint(&format!("p{}", PROMPT_CAPACITY + 9), now)
        .is_some());
}

#[test]
fn client_and_prompt_ids_are_read_from_bodies() {
    assert_eq!(
        body_client_id(br#"{"prompt":{"3":{"inputs":{}}},"client_id":"abc"}"#).as_deref(),
        Some("abc")
    );
    assert_eq!(body_client_id(br#"{"client_id":5}"#), None);
    assert_eq!(body_client_id(b"not json"), None);
    assert_eq!(
        response_prompt_id(br#"{"prompt_id":"9f1","number":3,"node_errors":{}}"#).as_deref(),
        Some("9f1")
    );
    assert_eq!(response_prompt_id(br#"{"error":"x"}"#), None);
}
