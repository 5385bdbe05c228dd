"""The soak's end checks, each PASS or FAIL, and the report lines that explain them.

How failed requests are matched with the injected faults:
  1. where: the clean simulator's endpoint may only have `success` and `client_cancelled`; the
     faulty one only those and the outcomes its faults cause; no request may end before routing.
  2. exactly, request by request: every outcome count of the gateway (`infergate_requests_total`
     summed over endpoints) equals the count of requests whose client saw that outcome (status
     and error code, or the SSE error event; see load.py), and no client saw anything else.
     `client_cancelled` thus equals the cancels the clients sent.
  3. exactly, per simulator: the requests each simulator received
     (`infergate_sim_requests_received_total`) equal the gateway's requests on its endpoint.
  4. statistically, per fault: on the faulty endpoint, the requests a fault can hit (all but
     the cancels, which carry `x-sim-fault: none`) times the fault's effective rate (its rate
     times the chance that no earlier fault hit) is the expected count; the outcomes it causes
     must be within 5 standard deviations (binomial) + 3 of it.
"""

import math

import probe

FD_MARGIN = 4
RSS_GROWTH_MAX = 0.05
CLEAN = {"success", "client_cancelled"}
# What each fault does to a request through the gateway (streams / non-streams).
FAULT_OUTCOMES = {
    "status": ("upstream_5xx",),
    "stall-after": ("timeout_idle", "timeout_first_token"),
    "drop-after": ("upstream_error",),
    "hang": ("timeout_first_token",),
}


def rss_ref_time(duration_s):
    return min(300.0, duration_s / 6)


def _faults(specs):
    """[(spec, effective rate, outcomes)] in draw order."""
    out, none_before = [], 1.0
    for spec in specs:
        name, _, rate = spec.partition("@")
        rate = float(rate) if rate else 1.0
        kind = name.split("=")[0]
        out.append((name, rate, rate * none_before, FAULT_OUTCOMES.get(kind, ())))
        none_before *= 1 - rate
    return out


def run(ctx, samples, final):
    results, report = [], []

    def result(name, ok, detail):
        results.append({"name": name, "pass": bool(ok), "detail": detail})

    # RSS.
    ref_t = rss_ref_time(ctx["minutes"] * 60)
    ref = next((s for s in samples if s["t"] >= ref_t - 1), samples[-1])
    end = samples[-1]
    growth = end["rss_kib"] / ref["rss_kib"] - 1 if ref["rss_kib"] else 0
    peak = max(s["rss_kib"] for s in samples if s["t"] >= ref["t"])
    result(
        "rss_flat",
        growth <= RSS_GROWTH_MAX,
        f"RSS {ref['rss_kib'] / 1024:.1f} MiB at {ref['t']:.0f} s, {end['rss_kib'] / 1024:.1f} MiB "
        f"at {end['t']:.0f} s: {100 * growth:+.1f} % (max +{100 * RSS_GROWTH_MAX:.0f} %); peak after "
        f"the reference {peak / 1024:.1f} MiB; before load {ctx['base_rss_kib'] / 1024:.1f} MiB",
    )
    # Descriptors.
    peak_fds = max(s["fds"] for s in samples)
    result(
        "fds_flat",
        abs(ctx["fds_end"] - ctx["base_fds"]) <= FD_MARGIN,
        f"{ctx['base_fds']} before load, peak {peak_fds} under load, {ctx['fds_end']} "
        f"{ctx['fds_wait_s']} s after load stopped (margin ±{FD_MARGIN})",
    )
    result("in_flight_zero", ctx["in_flight_end"] == 0,
           f"infergate_endpoint_in_flight summed after load: {ctx['in_flight_end']}")
    gw = final["gateway"]
    r_ok = probe.total(gw, "infergate_config_reloads_total", result="success")
    r_fail = probe.total(gw, "infergate_config_reloads_total", result="failure")
    result(
        "reloads",
        ctx["reloads_ok"] == ctx["reloads_sent"] and r_ok == ctx["reloads_sent"] and r_fail == 0,
        f"{ctx['reloads_sent']} sent, {ctx['reloads_ok']} answered 200; gateway counted "
        f"{r_ok:.0f} success, {r_fail:.0f} failure",
    )

    # Outcomes by endpoint.
    eps = probe.by_endpoint_outcome(gw)
    good, faulty = ctx["good_ep"], ctx["faulty_ep"]
    specs = _faults(ctx["faults"])
    allowed = {good: CLEAN, faulty: CLEAN.union(*[o for *_, o in specs])}
    stray = {f"{e or '(no endpoint)'}/{o}": int(v) for (e, o), v in eps.items()
             if v and o not in allowed.get(e, ())}
    outcomes = sorted({o for _, o in eps})
    report.append("")
    report.append("requests by outcome (gateway, infergate_requests_total):")
    report.append(f"  {'outcome':<22}{'good sim':>10}{'faulty sim':>12}{'client saw':>12}")
    client = {}
    for key, v in ctx["client"].items():
        o = key.split("/", 1)[1]
        client[o] = client.get(o, 0) + v
    for o in sorted(set(outcomes) | set(client)):
        report.append(f"  {o:<22}{eps.get((good, o), 0):>10.0f}{eps.get((faulty, o), 0):>12.0f}"
                      f"{client.get(o, 0):>12}")
    result("failures_only_where_injected", not stray,
           "every outcome is allowed on its endpoint" if not stray else f"unexplained: {stray}")
    gw_by_outcome = {}
    for (_, o), v in eps.items():
        gw_by_outcome[o] = gw_by_outcome.get(o, 0) + int(v)
    diff = {o: (gw_by_outcome.get(o, 0), client.get(o, 0))
            for o in set(gw_by_outcome) | set(client)
            if gw_by_outcome.get(o, 0) != client.get(o, 0)}
    cancels = sum(v for k, v in ctx["client"].items() if k.startswith("cancel/"))
    result("gateway_matches_clients", not diff,
           f"every outcome count equals what the clients saw; client_cancelled "
           f"{gw_by_outcome.get('client_cancelled', 0)} = cancels sent {cancels}"
           if not diff else f"(gateway, clients) differ: {diff}")
    recv = {
        good: probe.total(final["good"], "infergate_sim_requests_received_total"),
        faulty: probe.total(final["faulty"], "infergate_sim_requests_received_total"),
    }
    per_ep = {e: sum(v for (e2, _), v in eps.items() if e2 == e) for e in (good, faulty)}
    result("simulators_match_gateway", all(recv[e] == per_ep[e] for e in recv),
           f"good sim received {recv[good]:.0f} (gateway {per_ep[good]:.0f}), faulty sim "
           f"received {recv[faulty]:.0f} (gateway {per_ep[faulty]:.0f})")

    # Each fault's count against its rate.
    n = per_ep[faulty] - eps.get((faulty, "client_cancelled"), 0)
    report.append("")
    report.append(f"faults injected by the faulty simulator ({n:.0f} requests it could hit):")
    report.append(f"  {'fault':<16}{'rate':>7}{'eff.':>8}{'expected':>10}{'seen':>7}  outcomes")
    far = []
    for name, rate, p, outs in specs:
        seen = sum(eps.get((faulty, o), 0) for o in outs)
        exp = n * p
        tol = 5 * math.sqrt(n * p * (1 - p)) + 3
        split = ", ".join(f"{o} {eps.get((faulty, o), 0):.0f}" for o in outs)
        report.append(f"  {name:<16}{rate:>7.3f}{p:>8.4f}{exp:>10.1f}{seen:>7.0f}  {split}")
        if abs(seen - exp) > tol:
            far.append(f"{name}: {seen:.0f} vs {exp:.1f} ± {tol:.1f}")
    result("fault_counts_match_rates", not far,
           "each fault's outcomes within 5 sigma + 3 of rate x requests" if not far else "; ".join(far))

    # Throughput.
    dur = samples[-1]["t"] - samples[0]["t"]
    rps = (samples[-1]["requests"] - samples[0]["requests"]) / dur if dur > 0 else 0
    report.append("")
    report.append(f"throughput: {rps:.1f} requests/s over {dur:.0f} s "
                  f"({sum(gw_by_outcome.values())} requests in all)")
    report.append("")
    for r in results:
        report.append(f"{'PASS' if r['pass'] else 'FAIL'} {r['name']}: {r['detail']}")
    return results, report
