//! A complete (non-streamed) `chat.completion` or `text_completion`.

use bytes::Bytes;
use serde::Serialize;

use crate::sim::api::Api;
use crate::sim::words;

use super::json::to_json;
use super::stamp::Stamp;
use super::usage::Usage;

#[derive(Serialize)]
struct Completion<'a, C> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [C; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: (),
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    index: u32,
    text: &'a str,
    logprobs: (),
    finish_reason: &'static str,
}

/// A complete `chat.completion` or `text_completion` with `completion_tokens` tokens.
pub fn completion(
    api: Api,
    model: &str,
    prompt_tokens: u64,
    completion_tokens: u32,
    stamp: Stamp,
) -> Bytes {
    let Stamp { id, created } = stamp;
    let text = words::output_text(completion_tokens);
    let usage = Usage::new(prompt_tokens, completion_tokens);
    match api {
        Api::Chat => to_json(&Completion {
            id: &id,
            object: "chat.completion",
            created,
            model,
            choices: [ChatChoice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: &text,
                },
                logprobs: (),
                finish_reason: "length",
            }],
            usage,
        }),
        Api::Completion => to_json(&Completion {
            id: &id,
            object: "text_completion",
            created,
            model,
            choices: [TextChoice {
                index: 0,
                text: &text,
                logprobs: (),
                finish_reason: "length",
            }],
            usage,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn complete_chat_response() {
        let body = completion(
            Api::Chat,
            "m",
            4,
            2,
            Stamp::new(Api::Chat, true, Some("r1")),
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(v["choices"][0]["message"]["content"], " the quick");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["total_tokens"], 6);
    }
}
