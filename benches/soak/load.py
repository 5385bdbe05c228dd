"""The soak's clients: closed-loop threads posting chat completions through the gateway.

Each request is one of three kinds, drawn per request:
  stream     streamed, 16 tokens, read to the end
  plain      not streamed, 16 tokens
  cancel     streamed, 64 tokens, sent with `x-sim-fault: none` (so no simulator fault applies),
             the connection closed after the second token event: a client that goes away
             mid-stream
and each is classified by what the client saw, in the gateway's outcome names:
  success               200 and the whole body (streams: up to `data: [DONE]`)
  upstream_5xx          HTTP 500 (the simulator's status fault, passed through)
  timeout_first_token   504 `upstream_first_token_timeout`
  timeout_idle          an SSE error event `upstream_stalled`
  upstream_error        502 `upstream_error` or an SSE error event `upstream_error`
  client_cancelled      a cancel that read its two token events and closed
  unexpected:...        anything else (a FAIL)
"""

import http.client
import json
import random
import threading

KINDS = (("stream", 0.45), ("plain", 0.45), ("cancel", 0.10))
CLIENT_TIMEOUT_S = 15


def _pick(rng):
    x = rng.random()
    for kind, share in KINDS:
        if x < share:
            return kind
        x -= share
    return KINDS[-1][0]


def _body(stream, max_tokens):
    body = {
        "model": "demo",
        "messages": [{"role": "user", "content": "a soak of the gateway"}],
        "max_tokens": max_tokens,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body)


def _error_code(raw):
    try:
        err = json.loads(raw).get("error") or {}
        return str(err.get("code"))
    except (ValueError, AttributeError):
        return "?"


def _status_outcome(status, raw):
    code = _error_code(raw)
    if status == 500:
        return "upstream_5xx"
    if status == 504 and code == "upstream_first_token_timeout":
        return "timeout_first_token"
    if status == 502 and code == "upstream_error":
        return "upstream_error"
    return f"unexpected:{status}:{code}"


def _read_stream(resp, cancel):
    """Reads SSE events; returns the outcome."""
    tokens = 0
    while True:
        line = resp.readline()
        if not line:
            return "unexpected:stream_cut"
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            resp.read()  # the end of the chunked body, so the connection can be reused
            return "unexpected:cancel_finished" if cancel else "success"
        try:
            event = json.loads(data)
        except ValueError:
            return "unexpected:bad_event"
        if "error" in event:
            code = str((event.get("error") or {}).get("code"))
            return {"upstream_stalled": "timeout_idle", "upstream_error": "upstream_error"}.get(
                code, f"unexpected:sse:{code}"
            )
        if event.get("choices"):
            tokens += 1
            if cancel and tokens >= 2:
                return "client_cancelled"


class Tally:
    """Counts by (kind, outcome), shared by the clients."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.done = 0

    def add(self, kind, outcome):
        with self.lock:
            key = (kind, outcome)
            self.counts[key] = self.counts.get(key, 0) + 1
            self.done += 1

    def snapshot(self):
        with self.lock:
            return dict(self.counts), self.done


def client(host, port, seed, stop, tally):
    """One closed-loop client: requests back to back until `stop` is set."""
    rng = random.Random(seed)
    conn = None
    while not stop.is_set():
        kind = _pick(rng)
        cancel = kind == "cancel"
        stream = kind != "plain"
        headers = {"content-type": "application/json"}
        if cancel:
            headers["x-sim-fault"] = "none"
        body = _body(stream, 64 if cancel else 16)
        outcome = None
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=CLIENT_TIMEOUT_S)
            conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                outcome = _status_outcome(resp.status, resp.read())
            elif stream:
                outcome = _read_stream(resp, cancel)
            else:
                raw = resp.read()
                outcome = "success" if b'"choices"' in raw else "unexpected:bad_body"
        except (OSError, http.client.HTTPException) as e:
            outcome = f"unexpected:{type(e).__name__}"
        if outcome != "success" and conn is not None:
            # Cancels, errors and cut streams: this connection is done with.
            conn.close()
            conn = None
        tally.add(kind, outcome)
    if conn is not None:
        conn.close()


def start(gateway, workers, seed, stop, tally):
    host, port = gateway.rsplit(":", 1)
    threads = []
    for i in range(workers):
        t = threading.Thread(
            target=client, args=(host, int(port), seed * 1000 + i, stop, tally), daemon=True
        )
        t.start()
        threads.append(t)
    return threads
