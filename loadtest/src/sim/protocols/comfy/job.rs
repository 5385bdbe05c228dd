//! One ComfyUI prompt's execution, with the messages ComfyUI sends its client.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::super::comfy_state::{ComfyState, QueueItem};

/// Sampling steps when a sampler node does not say, and the most it may ask for.
const DEFAULT_STEPS: u64 = 4;
const MAX_STEPS: u64 = 1000;

fn timestamp() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Node ids in execution order: numerically where they are numbers, then by name.
fn order(prompt: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut nodes: Vec<_> = prompt.iter().collect();
    nodes.sort_by_key(|(id, _)| (id.parse::<u64>().unwrap_or(u64::MAX), (*id).clone()));
    nodes
}

/// A file name prefix made safe: letters, digits, `_` and `-` only.
fn prefix(node: &Value) -> String {
    let raw = node
        .pointer("/inputs/filename_prefix")
        .and_then(Value::as_str)
        .unwrap_or("ComfyUI");
    let safe: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect();
    if safe.is_empty() {
        "ComfyUI".to_owned()
    } else {
        safe
    }
}

/// Forgets the prompt if its task ends before recording it (the runtime shut down).
struct Pending<'a> {
    state: &'a ComfyState,
    prompt_id: &'a str,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.state.forget(self.prompt_id);
        }
    }
}

/// Waits for its turn, executes the prompt node by node, records it in the history and
/// tells its client, as ComfyUI does: `execution_start`, `execution_cached`, per node
/// `executing` (then `progress` per sampling step, or `executed` with the saved images),
/// `execution_success`, and `executing` with `node: null` once the history holds it.
pub async fn run(state: Arc<ComfyState>, item: QueueItem, step: Duration) {
    let mut pending = Pending {
        state: &state,
        prompt_id: &item.prompt_id,
        done: false,
    };
    let _exec = state.exec.lock().await;
    state.start(&item.prompt_id);
    let id = item.prompt_id.as_str();
    let mut messages = Vec::new();
    let mut send = |kind: &str, data: Value, record: bool| {
        if record {
            messages.push(json!([kind, data]));
        }
        state.send(&item, &json!({"type": kind, "data": data}));
    };
    send(
        "execution_start",
        json!({"prompt_id": id, "timestamp": timestamp()}),
        true,
    );
    send(
        "execution_cached",
        json!({"nodes": [], "prompt_id": id, "timestamp": timestamp()}),
        true,
    );
    let mut outputs = Map::new();
    let mut meta = Map::new();
    let empty = Map::new();
    let prompt = item.prompt.as_object().unwrap_or(&empty);
    for (node_id, node) in order(prompt) {
        send(
            "executing",
            json!({"node": node_id, "display_node": node_id, "prompt_id": id}),
            false,
        );
        let class = node.get("class_type").and_then(Value::as_str).unwrap_or("");
        if class.contains("Sampler") {
            let steps = node
                .pointer("/inputs/steps")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_STEPS)
                .clamp(1, MAX_STEPS);
            for value in 1..=steps {
                tokio::time::sleep(step).await;
                send(
                    "progress",
                    json!({"value": value, "max": steps, "prompt_id": id, "node": node_id}),
                    false,
                );
            }
        }
        if item.outputs.contains(node_id) {
            let images = json!([{
                "filename": state.new_image(&prefix(node)),
                "subfolder": "",
                "type": "output",
            }]);
            outputs.insert(node_id.clone(), json!({ "images": images }));
            meta.insert(
                node_id.clone(),
                json!({"node_id": node_id, "display_node": node_id, "parent_node": null, "real_node_id": node_id}),
            );
            send(
                "executed",
                json!({"node": node_id, "display_node": node_id, "output": {"images": images}, "prompt_id": id}),
                false,
            );
        }
    }
    send(
        "execution_success",
        json!({"prompt_id": id, "timestamp": timestamp()}),
        true,
    );
    let entry = json!({
        "prompt": item.as_list(),
        "outputs": outputs,
        "status": {"status_str": "success", "completed": true, "messages": messages},
        "meta": meta,
    });
    state.finish(&item, entry);
    pending.done = true;
    state.send(
        &item,
        &json!({"type": "executing", "data": {"node": null, "display_node": null, "prompt_id": id}}),
    );
}
