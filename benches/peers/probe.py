#!/usr/bin/env python3
"""Stream probe for benches/peers.sh (stdlib asyncio, HTTP/1.1, one connection per stream).

ttft: runs N streams, C at a time, and prints one JSON line: the time from the request's last
      byte sent to the first event with non-empty `delta.content` (TTFT, ms: p50, p90, mean),
      the gaps between content events, `coalesced_pct` (the share of gaps under 1 ms: events
      that arrived bunched) and content events per stream.
hold: reads the summed VmRSS of --pids, opens N streams and waits until each has its first
      content event, reads VmRSS again, closes them all and prints one JSON line.
"""

import argparse
import asyncio
import collections
import json
import statistics
import sys
import time


def request(port, model):
    body = json.dumps(
        {"model": model, "stream": True, "max_tokens": 64,
         "messages": [{"role": "user", "content": "Say something."}]},
        separators=(",", ":"),
    ).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n"
        b"content-type: application/json\r\naccept: text/event-stream\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (port, len(body), body)
    )


class Stream:
    """One stream: the time its request went out and the arrival time of each content event."""

    def __init__(self):
        self.sent = 0.0
        self.content = []
        self.done = False
        self.first = asyncio.get_running_loop().create_future()


async def body_pieces(reader, chunked):
    """Yields the body's bytes as they arrive (decoding chunked transfer encoding)."""
    if not chunked:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            yield data
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)


def is_content(payload):
    """Whether an event carries a non-empty `delta.content` (a byte search: the upstreams write
    compact JSON, and this probe must stay cheap beside them on one CPU)."""
    at = payload.find(b'"delta":{')
    return at >= 0 and payload.find(b'"content":"', at) >= 0 and b'"content":""' not in payload


async def run_stream(port, model, st, writers=None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    if writers is not None:
        writers.append(writer)
    try:
        writer.write(request(port, model))
        await writer.drain()
        st.sent = time.perf_counter()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"200":
            raise RuntimeError("status %s" % status.decode())
        chunked = b"transfer-encoding: chunked" in head.lower()
        buf = b""
        async for piece in body_pieces(reader, chunked):
            now = time.perf_counter()
            buf += piece
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                for line in ev.split(b"\n"):
                    if line.startswith(b"data:"):
                        payload = line[5:].strip()
                        if payload == b"[DONE]":
                            st.done = True
                        elif is_content(payload):
                            st.content.append(now)
                            if not st.first.done():
                                st.first.set_result(now)
    finally:
        if not st.first.done():
            st.first.set_result(None)
        writer.close()


async def ttft(args):
    sem = asyncio.Semaphore(args.concurrency)
    streams = []
    why = collections.Counter()

    async def one():
        async with sem:
            st = Stream()
            streams.append(st)
            try:
                await asyncio.wait_for(run_stream(args.port, args.model, st), args.timeout)
            except (OSError, RuntimeError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                st.done = False
                why[type(e).__name__ + (": %s" % e if str(e) else "")] += 1

    await asyncio.gather(*(one() for _ in range(args.n)))
    ok = [s for s in streams if s.done and s.content]
    ttfts = sorted((s.content[0] - s.sent) * 1e3 for s in ok)
    gaps = [(b - a) * 1e3 for s in ok for a, b in zip(s.content, s.content[1:])]
    q = (lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))] if xs else None)
    return {
        "streams": args.n, "ok": len(ok), "errors": args.n - len(ok),
        "ttft_p50_ms": q(ttfts, 0.5), "ttft_p90_ms": q(ttfts, 0.9),
        "ttft_mean_ms": statistics.fmean(ttfts) if ttfts else None,
        "gap_mean_ms": statistics.fmean(gaps) if gaps else None,
        "coalesced_pct": 100.0 * sum(g < 1.0 for g in gaps) / len(gaps) if gaps else None,
        "content_events_per_stream": statistics.fmean(len(s.content) for s in ok) if ok else None,
        "why": dict(why),
    }


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


async def hold(args):
    pids = [int(p) for p in args.pids.split(",") if p]
    idle = rss_kib(pids)
    writers, tasks, streams = [], [], []
    opening = asyncio.Semaphore(args.concurrency)

    async def one():
        st = Stream()
        streams.append(st)
        async with opening:
            task = asyncio.ensure_future(run_stream(args.port, args.model, st, writers))
            tasks.append(task)
            await asyncio.wait([task, st.first], return_when=asyncio.FIRST_COMPLETED)

    try:
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(args.n))), args.timeout)
    except asyncio.TimeoutError:
        pass
    opened = sum(1 for s in streams if s.first.done() and s.first.result() is not None)
    await asyncio.sleep(0.5)  # let the proxies settle after the last open
    full = rss_kib(pids)
    for w in writers:
        w.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "streams": args.n, "opened": opened, "rss_idle_kib": idle, "rss_open_kib": full,
        "kib_per_stream": (full - idle) / opened if opened else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["ttft", "hold"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model", default="bench-timed")
    ap.add_argument("-n", type=int, default=20, help="streams")
    ap.add_argument("--concurrency", type=int, default=1, help="streams at once (hold: opening at once)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per stream (hold: for all)")
    ap.add_argument("--pids", default="", help="hold: processes whose VmRSS to sum, comma-separated")
    args = ap.parse_args()
    out = asyncio.run(ttft(args) if args.mode == "ttft" else hold(args))
    print(json.dumps(out))
    return 0 if out.get("ok", out.get("opened")) == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
