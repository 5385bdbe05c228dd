"""Streams a chat completion through the gateway with the official `openai` client.

Usage: openai_stream.py BASE_URL   (e.g. http://127.0.0.1:9100/v1)
Prints one JSON object with what the client saw.
"""
import json
import sys

import openai

base_url = sys.argv[1]
client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)

stream = client.chat.completions.create(
    model="demo",
    messages=[{"role": "user", "content": "Say something"}],
    max_tokens=12,
    stream=True,
    stream_options={"include_usage": True},
)
text = []
chunks_with_content = 0
usage = None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        chunks_with_content += 1
        text.append(chunk.choices[0].delta.content)
    if chunk.usage is not None:
        usage = chunk.usage

models = [m.id for m in client.models.list()]

not_found_status = None
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
except openai.NotFoundError as e:
    not_found_status = e.status_code

print(json.dumps({
    "text": "".join(text),
    "chunks_with_content": chunks_with_content,
    "completion_tokens": usage.completion_tokens if usage else None,
    "models": models,
    "not_found_status": not_found_status,
}))
