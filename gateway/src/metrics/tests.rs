#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn outcome_indices_match_their_position() {
    for (i, o) in Outcome::ALL.iter().enumerate() {
        assert_eq!(o.index(), i);
    }
}

#[test]
fn buckets_are_sorted_and_fine_at_the_low_end() {
    for b in [TTFT_BUCKETS, TPOT_BUCKETS, DURATION_BUCKETS] {
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert!(*b.last().unwrap() >= 120.0);
    }
    assert!(TTFT_BUCKETS
        .windows(2)
        .take_while(|w| w[1] <= 0.1)
        .all(|w| w[1] - w[0] <= 0.0101));
    assert!(TPOT_BUCKETS
        .windows(2)
        .take_while(|w| w[1] <= 0.01)
        .all(|w| w[1] - w[0] <= 0.00101));
}

#[test]
fn encodes_counts_with_labels() {
    let m = Metrics::new().unwrap();
    let v = m.variant("demo", "b", "b");
    let r = m.member(&v, "http://127.0.0.1:1", false);
    r.count(Outcome::Success);
    r.count(Outcome::Success);
    r.ttft(0.3);
    m.rejected(Outcome::UnknownModel);
    let text = String::from_utf8(m.encode()).unwrap();
    assert!(text.contains(r#"infergate_requests_total{backend="b",endpoint="http://127.0.0.1:1",model="demo",outcome="success",variant="b"} 2"#), "{text}");
    assert!(text.contains(r#"infergate_requests_total{backend="",endpoint="",model="",outcome="unknown_model",variant=""} 1"#));
    assert!(
        text.contains(
            r#"infergate_time_to_first_token_seconds_count{backend="b",model="demo",variant="b"} 1"#
        ),
        "{text}"
    );
    assert!(
        !text.contains("infergate_endpoint_time_to_first_token_seconds"),
        "opt-in only"
    );
    assert!(text.contains("infergate_build_info{version="));
}

#[test]
fn idle_handles_add_no_series() {
    let m = Metrics::new().unwrap();
    let before = m.encode().len();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let v = m.variant(&format!("m{i}"), "b", "v");
            (
                m.member(&v, "http://127.0.0.1:1", true),
                m.endpoint("b", &format!("e{i}")),
            )
        })
        .collect();
    assert_eq!(m.encode().len(), before);
    drop(handles);
}

#[test]
fn endpoint_histograms_are_opt_in_and_retired_series_disappear() {
    let m = Metrics::new().unwrap();
    let v = m.variant("demo", "b", "v");
    let a = m.member(&v, "http://127.0.0.1:1", true);
    let b = m.member(&v, "http://127.0.0.1:2", true);
    a.count(Outcome::Success);
    a.duration(0.2);
    b.count(Outcome::Success);
    b.duration(0.1);
    m.endpoint("b", "http://127.0.0.1:1")
        .failure(crate::endpoint::Failure::Connect);
    let text = String::from_utf8(m.encode()).unwrap();
    assert!(
        text.contains(
            r#"infergate_request_duration_seconds_count{backend="b",model="demo",variant="v"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"infergate_endpoint_request_duration_seconds_count{backend="b",endpoint="http://127.0.0.1:1",model="demo",variant="v"} 1"#), "{text}");

    m.retire_member("demo", "b", "v", "http://127.0.0.1:1");
    m.retire_endpoint("b", "http://127.0.0.1:1");
    let text = String::from_utf8(m.encode()).unwrap();
    assert!(!text.contains("127.0.0.1:1\""), "{text}");
    assert!(text.contains("127.0.0.1:2\""), "{text}");

    m.retire_variant("demo", "b", "v");
    m.clear_endpoint_histograms();
    let text = String::from_utf8(m.encode()).unwrap();
    assert!(
        !text.contains("infergate_request_duration_seconds"),
        "{text}"
    );
    assert!(
        !text.contains("infergate_endpoint_request_duration_seconds"),
        "{text}"
    );
}
