#!/usr/bin/env python3
"""Timed SSE upstream: an OpenAI-style chat stream with fixed timing (stdlib asyncio).

Each `--listen PORT:TTFT_MS:TOKENS:GAP_MS` serves, on 127.0.0.1:PORT, every POST with a
`text/event-stream` response whose head is sent at once, whose first content chunk follows
TTFT_MS later and whose TOKENS content chunks are GAP_MS apart, then a finish chunk with usage
and `data: [DONE]`. Chunk times are absolute deadlines from the request's arrival. HTTP/1.1
keep-alive, chunked transfer encoding, one event per chunk. A stream whose client goes away
ends at once. Other methods get a small JSON 200 (health checks).
"""

import argparse
import asyncio
import json
import sys

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'


def event(delta, finish=None, usage=None):
    chunk = {
        "id": "chatcmpl-timed",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def chunked(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_request(reader, prefix):
    """Reads one request (whose first bytes may be `prefix`, already read); returns its method,
    or None at the end of the connection."""
    try:
        head = prefix + await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or "0")
    if length:
        try:
            await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
    return lines[0].split(" ", 1)[0]


def rendered(tokens):
    """The chunks of one stream: TOKENS content chunks, then the end (finish, [DONE], last chunk)."""
    out = []
    for i in range(tokens):
        delta = {"content": "tok%d " % i}
        if i == 0:
            delta["role"] = "assistant"
        out.append(chunked(event(delta)))
    usage = {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens}
    out.append(chunked(event({}, "stop", usage)) + chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return out


async def stream(reader, writer, ttft, events, gap):
    """Sends one timed stream. Returns None when the client went away, else the bytes of its
    next request that arrived while the stream ended."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tokens = len(events) - 1
    writer.write(HEAD)
    await writer.drain()
    # A read during the stream returns only when the client closes (or sends its next request
    # as the stream ends).
    gone = asyncio.ensure_future(reader.read(1))
    try:
        for i in range(tokens):
            delay = start + ttft + i * gap - loop.time()
            if delay > 0:
                await asyncio.wait([gone], timeout=delay)
            if gone.done():
                return None
            writer.write(events[i])
            await writer.drain()
        writer.write(events[tokens])
        await writer.drain()
    finally:
        gone.cancel()
    # A cancelled read leaves unread bytes in the reader; one that finished returned them.
    try:
        return (await gone) or None
    except asyncio.CancelledError:
        return b""


async def serve_conn(reader, writer, ttft, events, gap):
    prefix = b""
    try:
        while True:
            method = await read_request(reader, prefix)
            prefix = b""
            if method is None:
                break
            if method != "POST":
                writer.write(OK)
                await writer.drain()
                continue
            prefix = await stream(reader, writer, ttft, events, gap)
            if prefix is None:
                break
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", action="append", required=True, metavar="PORT:TTFT_MS:TOKENS:GAP_MS")
    args = ap.parse_args()
    servers = []
    for spec in args.listen:
        try:
            port, ttft, tokens, gap = spec.split(":")
            port, ttft, tokens, gap = int(port), float(ttft) / 1e3, int(tokens), float(gap) / 1e3
        except ValueError:
            sys.exit("--listen %r: expected PORT:TTFT_MS:TOKENS:GAP_MS" % spec)

        async def handler(r, w, ttft=ttft, events=rendered(tokens), gap=gap):
            await serve_conn(r, w, ttft, events, gap)

        servers.append(await asyncio.start_server(handler, "127.0.0.1", port, backlog=4096))
        print("timed upstream on 127.0.0.1:%d" % port, flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
