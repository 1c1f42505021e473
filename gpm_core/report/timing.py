"""Running time: GPM Fig. 3b and the step-time ratios, book/12_running_time.

Reads the artifacts of `benchmarks/fig3b.py` and `benchmarks/step_time.py` (measured by
`gpm_core.analyses.timing`); tables and figures only.
"""

from __future__ import annotations

from . import rows_markdown

KINDS = ("gpm", "dkm")


def _fmt_ms(s: dict) -> str:
    return f"{s['median_ms']:.1f} ({s['q25_ms']:.1f}–{s['q75_ms']:.1f})"


def _fmt_ratio(r: dict) -> str:
    return f"{r['median']:.2f} ({r['q25']:.2f}–{r['q75']:.2f})"


def fig3b_rows(doc: dict, sweep: str, memory: bool = False) -> list[dict]:
    """Rows of one sweep of a fig3b artifact: the swept value, GPM and DKM median ms (with
    quartiles), GPM/DKM (paired), and each model's growth = median / median at the first
    value of the sweep (of the same (T, K) case for the steps sweep). memory=True: the
    memory path alone."""
    s = doc["sweeps"][sweep]
    x = s["x"]
    suffix = "_memory" if memory else ""
    rows, first = [], {}
    for c in s["cells"]:
        case = (c["T"], c["K"]) if sweep == "steps" else None
        row = {"T": c["T"], "K": c["K"], "steps": c["pinv_steps"], "x": c[x]}
        for kind in KINDS:
            t = c["times"].get(kind + suffix)
            if t is None:
                continue
            first.setdefault((case, kind), t["median_ms"])
            row[f"{kind}_ms"] = _fmt_ms(t)
            row[f"{kind}_growth"] = f"{t['median_ms'] / first[(case, kind)]:.2f}"
        r = c["ratios"].get("gpm_memory/dkm_memory" if memory else "gpm/dkm")
        if r is not None:
            row["gpm/dkm"] = _fmt_ratio(r)
        rows.append(row)
    return rows


def fig3b_cell(doc: dict, sweep: str, i: int) -> dict:
    """Cell i of one sweep of a fig3b artifact (negative i counts from the end)."""
    return doc["sweeps"][sweep]["cells"][i]


def fig3b_growth(doc: dict, sweep: str, kind: str, memory: bool = False) -> float:
    """Median time at the last value of the sweep / at the first (of the first (T, K) case
    in the steps sweep), for model `kind` ("gpm", "dkm"); memory=True: the memory path."""
    cells = doc["sweeps"][sweep]["cells"]
    if sweep == "steps":
        cells = [c for c in cells if (c["T"], c["K"]) == (cells[0]["T"], cells[0]["K"])]
    key = kind + ("_memory" if memory else "")
    return cells[-1]["times"][key]["median_ms"] / cells[0]["times"][key]["median_ms"]


def fig3b_ratio(doc: dict, sweep: str, i: int, memory: bool = False) -> float:
    """Median of the paired GPM/DKM ratio at cell i of a sweep (memory=True: memory paths)."""
    return fig3b_cell(doc, sweep, i)["ratios"]["gpm_memory/dkm_memory" if memory else "gpm/dkm"]["median"]


def ratio_median(row: dict, key: str) -> float:
    """The median of the paired ratio `key` (e.g. "gpm/vae") of a step_time row."""
    return row["ratios"][key]["median"]


FIG3B_COLUMNS = {"T": "T", "K": "K", "steps": "Ben-Cohen steps",
                 "gpm_ms": "GPM ms (IQR)", "dkm_ms": "DKM ms (IQR)", "gpm/dkm": "GPM/DKM (IQR)",
                 "gpm_growth": "GPM growth", "dkm_growth": "DKM growth"}


def fig3b_markdown(doc: dict, sweep: str, memory: bool = False) -> str:
    """`fig3b_rows` as a Markdown table (the DKM columns are left out of the steps sweep)."""
    cols = dict(FIG3B_COLUMNS)
    if sweep == "steps":
        for k in ("dkm_ms", "gpm/dkm", "dkm_growth"):
            cols.pop(k)
    return rows_markdown(fig3b_rows(doc, sweep, memory), cols)


def device_label(doc: dict) -> str:
    """'cpu (<name>, N threads)' or 'cuda (<GPU name>)' from an artifact's provenance."""
    d = doc["device"]
    extra = f", {d['threads']} thread{'s' if d.get('threads') != 1 else ''}" if d["type"] == "cpu" else ""
    return f"{d['type']} ({d.get('name', '?')}{extra})"


def fig_running_time(doc: dict):
    """GPM Fig. 3b from a fig3b artifact: median time per training step (top row) and of
    the memory path alone (bottom row, if measured) vs T, vs K, and vs the number of
    Ben-Cohen steps; bars are the interquartile ranges. Returns the Figure."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    sweeps = doc["sweeps"]
    has_mem = any(k.endswith("_memory") for k in sweeps["T"]["cells"][0]["times"])
    nrows = 2 if has_mem else 1
    fig, axes = plt.subplots(nrows, 3, figsize=(8.6, 3.0 * nrows + 0.3), squeeze=False)
    titles = {"T": "vs episode length T (K = {K})", "K": "vs memory slots K (T = {T})",
              "steps": "GPM vs Ben-Cohen steps"}
    colors = {"gpm": "C0", "dkm": "C3"}
    for row, suffix in enumerate(["", "_memory"][:nrows]):
        for col, name in enumerate(("T", "K", "steps")):
            ax, s = axes[row, col], sweeps[name]
            cells = s["cells"]
            groups = {}
            for c in cells:  # one line per model, and per (T, K) case in the steps sweep
                for kind in KINDS:
                    if kind + suffix in c["times"]:
                        label = kind.upper() + (f" T={c['T']}, K={c['K']}" if name == "steps" else "")
                        groups.setdefault((kind, label), []).append(c)
            for i, ((kind, label), cs) in enumerate(groups.items()):
                xs = [c[s["x"]] for c in cs]
                t = [c["times"][kind + suffix] for c in cs]
                med = [v["median_ms"] for v in t]
                err = [[m - v["q25_ms"] for m, v in zip(med, t)], [v["q75_ms"] - m for m, v in zip(med, t)]]
                ax.errorbar(xs, med, yerr=err, marker="o", ms=4, capsize=2, label=label,
                            color=colors[kind] if name != "steps" else f"C{i}",
                            ls="-" if name != "steps" or i == 0 else "--")
            c0 = cells[0]
            ax.set_title(("memory path\n" if suffix else "training step\n")
                         + titles[name].format(T=c0["T"], K=c0["K"]), fontsize=9)
            ax.set_xlabel({"T": "T", "K": "K", "pinv_steps": "approximation steps"}[s["x"]], fontsize=9)
            ax.set_xticks(sorted({c[s["x"]] for c in cells}))
            ax.tick_params(labelsize=8)
            if col == 0:
                ax.set_ylabel("ms per iteration (median)", fontsize=9)
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=8)
    fig.suptitle(f"Running time per iteration, batch {doc['batch']}, {device_label(doc)}", fontsize=9)
    fig.tight_layout()
    return fig


STEP_TIME_COLUMNS = {"config": "config", "variant": "variant", "BxT": "B × T",
                     "vae_ms": "VAE ms", "vae2_ms": "VAE, 2 samples ms", "gpm_ms": "GPM ms",
                     "dkm_ms": "DKM ms", "gpm/vae": "GPM/VAE", "gpm/vae2": "GPM/VAE 2 samples",
                     "dkm/vae": "DKM/VAE", "gpm_memory_ms": "GPM memory ms",
                     "dkm_memory_ms": "DKM memory ms", "gpm/gpm eager": "GPM / GPM eager",
                     "vae/vae eager": "VAE / VAE eager", "gpm/vae eager": "GPM / VAE eager"}


def step_time_rows(doc: dict) -> list[dict]:
    """Rows of a step_time artifact: median ms (IQR) per model and the paired ratios."""
    rows = []
    for r in doc["rows"]:
        row = {"config": r["config"], "variant": r["variant"], "BxT": f"{r['B']} × {r['T']}"}
        for k, s in r["times"].items():
            row[f"{k}_ms"] = _fmt_ms(s)
        for k, v in r["ratios"].items():
            row[k] = _fmt_ratio(v)
        rows.append(row)
    return rows


def step_time_markdown(doc: dict) -> str:
    rows = step_time_rows(doc)
    cols = {k: v for k, v in STEP_TIME_COLUMNS.items() if any(k in r for r in rows)}
    return rows_markdown(rows, cols)
