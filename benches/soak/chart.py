"""A self-contained SVG of the soak: the gateway's RSS and throughput over time."""

from html import escape

W, H, LEFT, RIGHT, TOP, PANEL, GAP = 860, 560, 70, 20, 40, 200, 60


def _nice_max(v):
    if v <= 0:
        return 1.0
    step = 10 ** (len(str(int(v))) - 1)
    return (int(v / step) + 1) * step


def _panel(parts, y0, title, unit, xs, ys, color, t_max, marker=None):
    y_max = _nice_max(max(ys) * 1.1) if ys else 1.0
    width = W - LEFT - RIGHT

    def px(t):
        return LEFT + width * t / t_max

    def py(v):
        return y0 + PANEL - PANEL * v / y_max

    parts.append(f'<text x="{LEFT}" y="{y0 - 10}" class="t">{escape(title)}</text>')
    for i in range(5):
        v = y_max * i / 4
        y = py(v)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" class="g"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="yl">{v:g}</text>')
    for i in range(7):
        t = t_max * i / 6
        x = px(t)
        parts.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + PANEL}" class="g"/>')
        parts.append(f'<text x="{x:.1f}" y="{y0 + PANEL + 16}" class="xl">{t / 60:.1f}</text>')
    parts.append(f'<text x="14" y="{y0 + PANEL / 2}" class="u" '
                 f'transform="rotate(-90 14 {y0 + PANEL / 2})">{escape(unit)}</text>')
    if marker is not None:
        x = px(marker)
        parts.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + PANEL}" class="m"/>')
    pts = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in zip(xs, ys))
    parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
    for t, v in zip(xs, ys):
        parts.append(f'<circle cx="{px(t):.1f}" cy="{py(v):.1f}" r="2.5" fill="{color}"/>')


def write(path, samples, ref_t, title):
    """samples: dicts with t (s), rss_kib, rps; ref_t: the RSS reference time (a dashed line)."""
    t_max = max([s["t"] for s in samples] + [1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif">',
        "<style>.t{font-size:14px;font-weight:bold}.yl{font-size:11px;text-anchor:end}"
        ".xl{font-size:11px;text-anchor:middle}.u{font-size:12px;text-anchor:middle}"
        ".g{stroke:#ddd;stroke-width:1}.m{stroke:#999;stroke-dasharray:4 3}</style>",
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-size="13">{escape(title)}</text>',
    ]
    xs = [s["t"] for s in samples]
    _panel(parts, TOP + 20, "gateway RSS (dashed: RSS reference point)", "MiB", xs,
           [s["rss_kib"] / 1024 for s in samples], "#1f77b4", t_max, ref_t)
    xs2 = [s["t"] for s in samples[1:]]
    _panel(parts, TOP + 20 + PANEL + GAP, "throughput: requests done per second (10 s windows)",
           "req/s", xs2, [s["rps"] for s in samples[1:]], "#d62728", t_max)
    parts.append(f'<text x="{LEFT + (W - LEFT - RIGHT) / 2}" y="{H - 4}" class="xl">'
                 "minutes since load start</text>")
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")
