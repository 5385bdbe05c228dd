"""Helpers of benches/scheduling.sh (standard library only).

  report.py scrape OUT.json ADDR...   sums the simulators' prefix-cache and preemption counters
                                      (GET http://ADDR/metrics; loopback addresses only) and
                                      writes them to OUT.json
  report.py table DIR WORKLOAD POLICY...
                                      prints the Markdown table of one workload: one row per
                                      policy, from DIR/WORKLOAD-POLICY.json (infergate-bench's
                                      results) and DIR/WORKLOAD-POLICY.sims.json (the scrape)
"""

import json
import sys
import urllib.request

COUNTERS = {
    "vllm:prefix_cache_queries_total": "queries",
    "vllm:prefix_cache_hits_total": "hits",
    "vllm:num_preemptions_total": "preemptions",
}


def scrape(out, addrs):
    totals = {v: 0.0 for v in COUNTERS.values()}
    for addr in addrs:
        if not addr.startswith("127.0.0.1:"):
            sys.exit(f"report.py: {addr} is not on 127.0.0.1")
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
            page = r.read().decode("utf-8", "replace")
        for line in page.splitlines():
            if line.startswith("#"):
                continue
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in COUNTERS:
                try:
                    totals[COUNTERS[name]] += float(line.rsplit(" ", 1)[1])
                except (IndexError, ValueError):
                    sys.exit(f"report.py: unreadable metric line from {addr}: {line!r}")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(totals, f)


def fmt_ms(v):
    if v is None:
        return "–"
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"


def row(d, workload, policy):
    with open(f"{d}/{workload}-{policy}.json", encoding="utf-8") as f:
        s = json.load(f)["steps"][0]["summary"]
    try:
        with open(f"{d}/{workload}-{policy}.sims.json", encoding="utf-8") as f:
            sims = json.load(f)
    except OSError:
        sims = None
    ttft = s.get("ttft_ms") or {}
    tpot = s.get("tpot_ms") or {}
    g = s.get("goodput") or {}
    req = s["requests"]
    hit = "–"
    if sims and sims["queries"] > 0:
        hit = f"{100 * sims['hits'] / sims['queries']:.0f} %"
    pre = "–" if not sims else f"{sims['preemptions']:.0f}"
    return (
        f"| {policy} | {fmt_ms(ttft.get('p50'))} | {fmt_ms(ttft.get('p99'))} "
        f"| {fmt_ms(tpot.get('p50'))} | {s['throughput']['requests_per_s']:.1f} "
        f"| {s['throughput']['output_tokens_per_s']:.0f} "
        f"| {g.get('requests_per_s', 0):.1f} ({g.get('attainment_pct', 0):.0f} %) "
        f"| {req['ok']}/{req['total']} | {hit} | {pre} |"
    )


def table(d, workload, policies):
    print(
        "| policy | TTFT p50 | TTFT p99 | TPOT p50 | req/s | output tok/s "
        "| goodput req/s (attainment) | ok/sent | prefix-cache hits | preemptions |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in policies:
        try:
            print(row(d, workload, p))
        except (OSError, KeyError, IndexError, ValueError) as e:
            print(f"| {p} | no result ({e}) | | | | | | | | |")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "scrape":
        scrape(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) >= 5 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
