#!/usr/bin/env python3
"""Plot IOMMU registry lookup throughput against reader threads (rcu vs rwlock vs mutex).

Runs `rcu-stress registry --json` for readers 1..4 and the designs rcu, rwlock and mutex
(one writer, one device per group), or reads JSON lines saved from earlier runs, and writes
an SVG line chart by hand (standard library only: no matplotlib).

Usage:
  scripts/plot-registry.py [--binary .build/release/rcu-stress] [--duration 3]
                           [--max-readers 4] [--out docs/registry-throughput.svg]
                           [--save docs/registry-throughput.jsonl] [--from FILE.jsonl]
"""
import argparse
import json
import math
import subprocess
import sys

DESIGNS = ["rcu", "rwlock", "mutex"]
COLORS = {"rcu": "#1b7837", "rwlock": "#2166ac", "mutex": "#b2182b"}


def run(binary, design, readers, duration):
    command = [binary, "registry", "--design", design, "--readers", str(readers), "--writers", "1",
               "--devices-per-group", "1", "--duration", str(duration), "--json"]
    print("+ " + " ".join(command), file=sys.stderr)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def nice_log_ticks(low, high):
    ticks = []
    exponent = math.floor(math.log10(low))
    while 10 ** exponent <= high * 1.0001:
        ticks.append(10 ** exponent)
        exponent += 1
    return ticks


def svg(results, out):
    width, height = 720, 440
    left, right, top, bottom = 90, 150, 50, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    readers = sorted({r["readers"] for r in results})
    values = [r["lookups_per_s"] for r in results if r["lookups_per_s"] > 0]
    low = 10 ** math.floor(math.log10(min(values)))
    high = 10 ** math.ceil(math.log10(max(values)))

    def x(n):
        if len(readers) == 1:
            return left + plot_w / 2
        return left + plot_w * (n - readers[0]) / (readers[-1] - readers[0])

    def y(v):
        return top + plot_h * (1 - (math.log10(v) - math.log10(low)) / (math.log10(high) - math.log10(low)))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15">'
             'IOMMU registry lookups/s vs reader threads (1 writer, 1 device per group)</text>']
    for tick in nice_log_ticks(low, high):
        ty = y(tick)
        parts.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{ty + 4:.1f}" text-anchor="end">1e{round(math.log10(tick))}</text>')
    for n in readers:
        parts.append(f'<line x1="{x(n):.1f}" y1="{top}" x2="{x(n):.1f}" y2="{top + plot_h}" stroke="#eee"/>')
        parts.append(f'<text x="{x(n):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{n}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 18}" text-anchor="middle">reader threads</text>')
    parts.append(f'<text x="22" y="{top + plot_h / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 22 {top + plot_h / 2})">lookups/s (log scale)</text>')
    for i, design in enumerate(DESIGNS):
        points = sorted((r["readers"], r["lookups_per_s"]) for r in results if r["design"] == design)
        if not points:
            continue
        color = COLORS[design]
        path = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in points if v > 0)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"/>')
        for n, v in points:
            if v > 0:
                parts.append(f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="4" fill="{color}">'
                             f'<title>{design}, {n} readers: {v:.3g} lookups/s</title></circle>')
        ly = top + 20 + 22 * i
        parts.append(f'<line x1="{left + plot_w + 15}" y1="{ly}" x2="{left + plot_w + 40}" y2="{ly}" '
                     f'stroke="{color}" stroke-width="2.5"/>')
        parts.append(f'<text x="{left + plot_w + 46}" y="{ly + 4}">{design}</text>')
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="10" fill="#666">'
                 'rcu-stress registry --json; 2-core shared machine, one run per point</text>')
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=".build/release/rcu-stress")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--max-readers", type=int, default=4)
    parser.add_argument("--out", default="docs/registry-throughput.svg")
    parser.add_argument("--save", help="also write the JSON lines here")
    parser.add_argument("--from", dest="source", help="read saved JSON lines instead of running")
    args = parser.parse_args()
    if args.source:
        with open(args.source) as f:
            results = [json.loads(line) for line in f if line.strip()]
    else:
        results = [r for readers in range(1, args.max_readers + 1) for design in DESIGNS
                   for r in run(args.binary, design, readers, args.duration)]
    if args.save:
        with open(args.save, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in results)
    results = [r for r in results if r.get("design") in DESIGNS]
    if not results:
        sys.exit("no rcu, rwlock or mutex results to plot")
    svg(results, args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
