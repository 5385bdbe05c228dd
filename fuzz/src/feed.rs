//! The health-feed document (`infergate_wire::feed::FeedDoc`) as the gateway reads it
//! (`serde_json::from_slice`, as `gateway/src/health.rs` does): a document that reads writes back
//! to JSON that reads as the same document, and a second write gives the same text; the
//! gateway's feed state (`infergate_gateway::feeds::FeedState`) takes it in and forgets it.

use infergate_gateway::feeds::FeedState;
use infergate_wire::feed::FeedDoc;

/// Reads `body` as a feed document and checks the round trip.
pub fn check(body: &[u8]) -> Result<(), String> {
    let Ok(doc) = serde_json::from_slice::<FeedDoc>(body) else {
        return Ok(());
    };
    let text = serde_json::to_string(&doc).map_err(|e| format!("cannot write {doc:?}: {e}"))?;
    let again = serde_json::from_str::<FeedDoc>(&text)
        .map_err(|e| format!("written {text:?} does not read back: {e}"))?;
    if again != doc {
        return Err(format!("read {doc:?}, wrote {text:?}, read back {again:?}"));
    }
    let text2 = serde_json::to_string(&again).map_err(|e| e.to_string())?;
    if text2 != text {
        return Err(format!("second write differs: {text:?} then {text2:?}"));
    }
    let mut state = FeedState::default();
    state.update("http://127.0.0.1:1/v1/health", &doc);
    state.update("http://127.0.0.1:2/v1/health", &again);
    if !state.forget("http://127.0.0.1:1/v1/health") {
        return Err("a feed just updated was not known".into());
    }
    Ok(())
}
