#!/usr/bin/env python3
"""Summary of a benches/peers.sh run: per-round figures, ratios to direct and to nginx taken
within each round, medians over rounds. Prints a Markdown table; writes the JSON summary."""

import argparse
import json
import statistics
import sys


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def rps(w):
    return w["requests"] / (w["duration_us"] / 1e6) if w and w.get("duration_us") else None


def figures(rec, clk_tck):
    """The figures of one target in one round (absolute values)."""
    f = {}
    j64, j1, s64 = rec.get("json_c64"), rec.get("json_c1"), rec.get("sse_c64")
    f["rps_c64"] = rps(j64)
    f["sse_rps_c64"] = rps(s64)
    f["p50_c1_us"] = j1["p50_us"] if j1 else None
    for key, w, ticks in (("cpu_us_req", j64, rec.get("cpu_json_ticks")),
                          ("sse_cpu_us_req", s64, rec.get("cpu_sse_ticks"))):
        f[key] = ticks / clk_tck * 1e6 / w["requests"] if ticks is not None and w and w["requests"] else None
    for c in ("c1", "c16"):
        t = rec.get("ttft_" + c)
        f["ttft_%s_ms" % c] = t["ttft_p50_ms"] if t else None
        f["coalesced_%s_pct" % c] = t["coalesced_pct"] if t else None
    hold = rec.get("hold")
    f["kib_per_stream"] = hold["kib_per_stream"] if hold else None
    f["idle_rss_mib"] = rec["idle_rss_kib"] / 1024 if rec.get("idle_rss_kib") is not None else None
    f["peak_rss_mib"] = rec["peak_rss_kib"] / 1024 if rec.get("peak_rss_kib") is not None else None
    errors = 0
    for w in (j64, j1, s64):
        errors += (w["errors"] + w["non2xx"]) if w else 0
    for t in (rec.get("ttft_c1"), rec.get("ttft_c16")):
        errors += t["errors"] if t else 0
    if hold:
        errors += hold["streams"] - hold["opened"]
    f["errors"] = errors
    return f


def relative(f, base, nginx):
    """Ratios and differences against direct (`base`) and nginx, in the same round."""
    div = lambda a, b: a / b if a is not None and b else None
    sub = lambda a, b: a - b if a is not None and b is not None else None
    return {
        "rps_c64_x_direct": div(f["rps_c64"], base.get("rps_c64")),
        "rps_c64_x_nginx": div(f["rps_c64"], nginx.get("rps_c64")),
        "cpu_us_req_x_nginx": div(f["cpu_us_req"], nginx.get("cpu_us_req")),
        "p50_c1_added_us": sub(f["p50_c1_us"], base.get("p50_c1_us")),
        "sse_rps_c64_x_direct": div(f["sse_rps_c64"], base.get("sse_rps_c64")),
        "sse_cpu_us_req_x_nginx": div(f["sse_cpu_us_req"], nginx.get("sse_cpu_us_req")),
        "ttft_c1_added_ms": sub(f["ttft_c1_ms"], base.get("ttft_c1_ms")),
        "ttft_c16_added_ms": sub(f["ttft_c16_ms"], base.get("ttft_c16_ms")),
    }


def fmt(v, spec, suffix=""):
    return "—" if v is None else format(v, spec) + suffix


def table(summary, targets):
    head = ("| target | c64 req/s ×direct | ×nginx | CPU µs/req (c64) | ×nginx | c1 added p50 "
            "| SSE c64 ×direct | SSE CPU µs/req | ×nginx | added TTFT c1 | added TTFT c16 "
            "| coalesced % c1 / c16 | peak RSS | idle RSS | per open stream | errors |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for t in targets:
        m = summary[t]
        if t == "direct":
            cells = [fmt(m["rps_c64"], ".0f", " req/s"), "", "", "", fmt(m["p50_c1_us"], ".0f", " µs"),
                     fmt(m["sse_rps_c64"], ".0f", " req/s"), "", "",
                     fmt(m["ttft_c1_ms"], ".2f", " ms"), fmt(m["ttft_c16_ms"], ".2f", " ms")]
        else:
            cells = [fmt(m["rps_c64_x_direct"], ".2f"), fmt(m["rps_c64_x_nginx"], ".2f"),
                     fmt(m["cpu_us_req"], ".1f"), fmt(m["cpu_us_req_x_nginx"], ".2f"),
                     fmt(m["p50_c1_added_us"], "+.0f", " µs"), fmt(m["sse_rps_c64_x_direct"], ".2f"),
                     fmt(m["sse_cpu_us_req"], ".1f"), fmt(m["sse_cpu_us_req_x_nginx"], ".2f"),
                     fmt(m["ttft_c1_added_ms"], "+.2f", " ms"), fmt(m["ttft_c16_added_ms"], "+.2f", " ms")]
        cells += ["%s / %s" % (fmt(m["coalesced_c1_pct"], ".1f"), fmt(m["coalesced_c16_pct"], ".1f")),
                  fmt(m["peak_rss_mib"], ".1f", " MiB"), fmt(m["idle_rss_mib"], ".1f", " MiB"),
                  fmt(m["kib_per_stream"], ".1f", " KiB"), str(m["errors"])]
        lines.append("| %s | %s |" % (t, " | ".join(cells)))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("raw", help="the run's JSON lines, one per target and round")
    ap.add_argument("--out", required=True, help="where to write the JSON summary")
    ap.add_argument("--clk-tck", type=float, default=100.0)
    ap.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    meta = dict(kv.split("=", 1) for kv in args.meta)
    with open(args.raw) as f:
        records = [json.loads(line) for line in f if line.strip()]
    rounds, targets = {}, []
    for rec in records:
        if rec["target"] not in targets:
            targets.append(rec["target"])
        if not rec.get("failed"):
            rounds.setdefault(rec["round"], {})[rec["target"]] = figures(rec, args.clk_tck)
    per_round = {}
    for r, by_target in rounds.items():
        base, nginx = by_target.get("direct", {}), by_target.get("nginx", {})
        per_round[r] = {t: dict(f, **relative(f, base, nginx)) for t, f in by_target.items()}
    summary = {}
    for t in targets:
        rows = [per_round[r][t] for r in per_round if t in per_round[r]]
        keys = rows[0].keys() if rows else []
        summary[t] = {k: median([row[k] for row in rows]) for k in keys if k != "errors"}
        summary[t]["errors"] = sum(row["errors"] for row in rows)
        summary[t]["rounds"] = len(rows)
        summary[t]["failed_rounds"] = sum(1 for rec in records if rec["target"] == t and rec.get("failed"))
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "summary": summary, "rounds": per_round, "raw": records}, f, indent=1)
    print("%s to %s; %s; nproc %s; kernel %s; commit %s; load average %s at start, %s at end; "
          "%s round(s) of %s s, medians over rounds" % (
              meta.get("started"), meta.get("date"), meta.get("cpu"), meta.get("nproc"), meta.get("kernel"),
              meta.get("commit"), meta.get("load_start"), meta.get("load_end"),
              meta.get("rounds"), meta.get("duration_s")))
    print()
    print(table({t: summary[t] for t in targets if summary[t]["rounds"]},
                [t for t in targets if summary[t]["rounds"]]))
    failed = [t for t in targets if summary[t]["failed_rounds"]]
    if failed:
        print("\nfailed to start in some rounds: " + ", ".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
