"""What the soak reads from the processes: Prometheus text, /proc, the admin API."""

import os
import re
import urllib.request

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def post(url, timeout=10):
    req = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics(addr):
    """[(name, {label: value}, float)] of http://ADDR/metrics."""
    out = []
    for line in get(f"http://{addr}/metrics").splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m:
            labels = dict(_LABEL.findall(m.group(2) or ""))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def total(samples, name, **want):
    return sum(
        v
        for n, labels, v in samples
        if n == name and all(labels.get(k) == w for k, w in want.items())
    )


def by_endpoint_outcome(samples):
    """{(endpoint, outcome): count} of infergate_requests_total."""
    out = {}
    for n, labels, v in samples:
        if n == "infergate_requests_total":
            key = (labels.get("endpoint", ""), labels.get("outcome", ""))
            out[key] = out.get(key, 0) + v
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))
