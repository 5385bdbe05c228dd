//! JSONL datasets of prompts.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// One line of a dataset.
#[derive(Clone, Debug)]
pub struct Entry {
    pub prompt: Prompt,
    pub max_tokens: Option<u32>,
}

#[derive(Clone, Debug)]
pub enum Prompt {
    Text(String),
    Messages(Value),
}

/// A JSONL dataset: one object per line with `prompt` (a string) or `messages` (a chat
/// message list), and optionally `max_tokens`.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    messages: Option<Vec<Value>>,
    #[serde(default)]
    max_tokens: Option<u32>,
}

impl Dataset {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read dataset {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("dataset {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let l: Line = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            let prompt = match (l.prompt, l.messages) {
                (Some(p), None) => Prompt::Text(p),
                (None, Some(m)) if !m.is_empty() => Prompt::Messages(Value::Array(m)),
                (Some(_), Some(_)) => {
                    return Err(format!("line {}: has both `prompt` and `messages`", n + 1))
                }
                _ => {
                    return Err(format!(
                        "line {}: needs `prompt` (a string) or `messages` (a non-empty list)",
                        n + 1
                    ))
                }
            };
            if l.max_tokens == Some(0) {
                return Err(format!("line {}: `max_tokens` must be at least 1", n + 1));
            }
            entries.push(Entry {
                prompt,
                max_tokens: l.max_tokens,
            });
        }
        if entries.is_empty() {
            return Err("no requests in the dataset".to_owned());
        }
        Ok(Self { entries })
    }
}
