"""The soak's driver: load, reloads, samples every 10 s, and the checks. Run by benches/soak.sh."""

import argparse
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chart  # noqa: E402
import check  # noqa: E402
import load  # noqa: E402
import probe  # noqa: E402

SAMPLE_S = 10
WEIGHTS = (20, 30)  # the faulty variant's weight, alternating at each reload (good: 80)
WEIGHT_LINE = re.compile(r"weight: \d+ # soak: faulty weight")


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--gateway", required=True)
    p.add_argument("--admin", required=True)
    p.add_argument("--gateway-pid", type=int, required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--good-sim", required=True)
    p.add_argument("--faulty-sim", required=True)
    p.add_argument("--faults", required=True)
    p.add_argument("--out", required=True)
    return p.parse_args()


def reload(a, n):
    weight = WEIGHTS[n % 2]
    with open(a.config) as f:
        text = f.read()
    text = WEIGHT_LINE.sub(f"weight: {weight} # soak: faulty weight", text)
    tmp = a.config + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, a.config)
    status, body = probe.post(f"http://{a.admin}/admin/reload")
    return status == 200 and '"reloaded"' in body


def sample(a, t0, tally, prev):
    m = probe.metrics(a.admin)
    outcomes = probe.by_endpoint_outcome(m)
    s = {
        "t": round(time.monotonic() - t0, 1),
        "rss_kib": probe.rss_kib(a.gateway_pid),
        "fds": probe.fds(a.gateway_pid),
        "in_flight": int(probe.total(m, "infergate_endpoint_in_flight")),
        "requests": int(sum(outcomes.values())),
        "client_done": tally.snapshot()[1],
    }
    by_outcome = {}
    for (_, outcome), v in outcomes.items():
        by_outcome[outcome] = by_outcome.get(outcome, 0) + int(v)
    s["by_outcome"] = by_outcome
    dt = s["t"] - prev["t"] if prev else 0
    s["rps"] = round((s["requests"] - prev["requests"]) / dt, 1) if dt > 0 else 0.0
    print(
        f"soak: t={s['t']:7.1f}s rss={s['rss_kib'] / 1024:7.1f} MiB fds={s['fds']:4d} "
        f"in_flight={s['in_flight']:3d} done={s['requests']:8d} ({s['rps']:.1f}/s) "
        + " ".join(f"{k}={v}" for k, v in sorted(by_outcome.items())),
        flush=True,
    )
    return s


def run(a):
    duration = a.minutes * 60
    base_fds = probe.fds(a.gateway_pid)
    base_rss = probe.rss_kib(a.gateway_pid)
    print(f"soak: before load: rss={base_rss / 1024:.1f} MiB fds={base_fds}", flush=True)
    stop = threading.Event()
    tally = load.Tally()
    t0 = time.monotonic()
    threads = load.start(a.gateway, a.workers, a.seed, stop, tally)
    samples = [sample(a, t0, tally, None)]
    reloads_sent = reloads_ok = 0
    k = 0
    while True:
        k += 1
        t_reload, t_sample = (k - 1) * SAMPLE_S + SAMPLE_S / 2, k * SAMPLE_S
        if t_reload < duration:
            time.sleep(max(0.0, t0 + t_reload - time.monotonic()))
            reloads_ok += reload(a, reloads_sent)
            reloads_sent += 1
        if t_sample > duration:
            break
        time.sleep(max(0.0, t0 + t_sample - time.monotonic()))
        samples.append(sample(a, t0, tally, samples[-1]))
    time.sleep(max(0.0, t0 + duration - time.monotonic()))
    stop.set()
    for t in threads:
        t.join()
    print(f"soak: load stopped after {time.monotonic() - t0:.1f} s", flush=True)
    return base_fds, base_rss, samples, tally, reloads_sent, reloads_ok


def settle(a):
    """Waits for in-flight to reach 0 (30 s at most), returns its last value."""
    deadline = time.monotonic() + 30
    while True:
        v = int(probe.total(probe.metrics(a.admin), "infergate_endpoint_in_flight"))
        if v == 0 or time.monotonic() > deadline:
            return v
        time.sleep(0.5)


def settle_fds(a, base, margin):
    """Waits for the descriptors to come back to base + margin (idle upstream connections are
    closed 90 s after their last use), 120 s at most; returns (count, seconds waited)."""
    t = time.monotonic()
    while True:
        n = probe.fds(a.gateway_pid)
        waited = time.monotonic() - t
        if n <= base + margin or waited > 120:
            return n, round(waited, 1)
        time.sleep(2)


def main():
    a = args()
    base_fds, base_rss, samples, tally, reloads_sent, reloads_ok = run(a)
    in_flight_end = settle(a)
    fds_end, fds_wait = settle_fds(a, base_fds, check.FD_MARGIN)
    final = {
        "gateway": probe.metrics(a.admin),
        "good": probe.metrics(a.good_sim),
        "faulty": probe.metrics(a.faulty_sim),
    }
    counts, _ = tally.snapshot()
    ctx = {
        "minutes": a.minutes,
        "workers": a.workers,
        "faults": a.faults.split(),
        "good_ep": f"http://{a.good_sim}",
        "faulty_ep": f"http://{a.faulty_sim}",
        "base_fds": base_fds,
        "base_rss_kib": base_rss,
        "fds_end": fds_end,
        "fds_wait_s": fds_wait,
        "in_flight_end": in_flight_end,
        "reloads_sent": reloads_sent,
        "reloads_ok": reloads_ok,
        "client": {f"{k}/{o}": v for (k, o), v in sorted(counts.items())},
    }
    results, report = check.run(ctx, samples, final)
    for line in report:
        print(line)
    with open(os.path.join(a.out, "samples.csv"), "w") as f:
        f.write("t_s,rss_kib,fds,in_flight,requests_total,requests_per_s\n")
        for s in samples:
            f.write(f"{s['t']},{s['rss_kib']},{s['fds']},{s['in_flight']},{s['requests']},{s['rps']}\n")
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"context": ctx, "samples": samples, "checks": results}, f, indent=1)
    svg = os.path.join(a.out, "chart.svg")
    ok = all(r["pass"] for r in results)
    chart.write(svg, samples, check.rss_ref_time(a.minutes * 60),
                f"infergate soak: {a.minutes:g} min, {a.workers} clients, "
                f"faults {a.faults}, {'PASS' if ok else 'FAIL'}")
    print(f"soak: chart {svg}")
    print(f"soak: samples {os.path.join(a.out, 'samples.csv')}, summary {os.path.join(a.out, 'summary.json')}")
    print("soak: PASS" if ok else "soak: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
