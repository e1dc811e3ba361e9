"""Draws the benchmark's charts from the figures `cargo bench` wrote.

Usage: charts.py FIGURES.json OUT_DIR. Writes `cold-start.svg` (first response
per function, plain HTTP and TLS, beside the no-op baseline) and `storm.svg`
(executions created by one burst of concurrent starts of one ID: ours against
the naive read-then-start). SVG: text, reviewable in a diff, shown by any
Markdown viewer. Run by `scripts/bench` with matplotlib from `.venv-plot`."""

import json
import pathlib
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

# Reproducible files: the same figures draw the same bytes.
plt.rcParams["svg.hashsalt"] = "sfn-singleton"
METADATA = {"Date": None, "Creator": None}


def cold_start(figures, out):
    rows = [(key.split(".", 1)[1], value) for key, value in figures.items() if key.startswith("cold_start.")]
    # Plain HTTP first, the baseline of the others.
    routes = sorted(rows[0][1], key=lambda route: (not route.startswith("plain"), route)) if rows else []
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(routes), 1)
    for i, route in enumerate(routes):
        xs = [n + (i - (len(routes) - 1) / 2) * width for n in range(len(rows))]
        values = [value[route]["first_response_ms"] for _, value in rows]
        bars = ax.bar(xs, values, width, label=f"first response, {route}")
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        inits = [value[route]["init_ms"] for _, value in rows]
        ax.scatter(xs, inits, marker="_", s=400, color="black", zorder=3, label="init" if i == 0 else None)
    ax.set_xticks(range(len(rows)), [name for name, _ in rows])
    ax.set_ylabel("ms from process start (median)")
    ax.set_title("Cold start of the release bootstrap: plain HTTP vs TLS")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "cold-start.svg", metadata=METADATA)


def storm(figures, out):
    storm = figures.get("storm")
    if not storm:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = ["sfn-singleton", "naive read-then-start"]
    values = [storm["ours"]["executions"], storm["naive"]["executions"]]
    bars = ax.bar(names, values, color=["tab:green", "tab:red"])
    ax.bar_label(bars)
    ax.set_ylabel("executions created")
    ax.set_title(f"{storm['requests']} concurrent starts of one ID")
    fig.tight_layout()
    fig.savefig(out / "storm.svg", metadata=METADATA)


def main(figures_path, out):
    figures = json.loads(pathlib.Path(figures_path).read_text())
    out.mkdir(parents=True, exist_ok=True)
    cold_start(figures, out)
    storm(figures, out)
    print(f"charts written to {out}")


if __name__ == "__main__":
    main(sys.argv[1], pathlib.Path(sys.argv[2]))
