"""The Markdown of a bench result (bench/run.py's JSON): the machine, one table row per
(fixture, target, peer), ``mconv --help`` start-up, where mconv is furthest behind a peer,
and the scale check."""
from __future__ import annotations

from typing import Optional

#: Lower-is-better figures compared as mconv / peer (``ratio`` keys of a case's peer).
BEHIND = {"convert_s": "conversion time", "peak_rss": "conversion peak RSS",
          "ms_1t": "latency, 1 thread", "ms_2t": "latency, 2 threads", "ops": "op count",
          "size": "output size", "transposes": "TRANSPOSE count"}


def _num(x, fmt: str) -> str:
    return "–" if x is None else fmt.format(x)


def pair(case: dict, peer: Optional[str], key: str, fmt: str, scale: float = 1.0,
         ratio: bool = False) -> str:
    """``mconv / peer (ratio)`` of figure ``key``; ``err`` where a tool failed."""
    cells = []
    for name in ("mconv", peer) if peer else ("mconv",):
        t = case["tools"].get(name, {})
        v = t.get(key)
        v = v / scale if v is not None and scale != 1 else v
        cells.append("err" if t.get("error") else _num(v, fmt))
    text = " / ".join(cells)
    r = case.get("ratios", {}).get(peer, {}).get(key) if peer else None
    return f"{text} ({r:.2f}x)" if ratio and r is not None else text


def rows(case: dict) -> list:
    """Table rows of one case: one per peer (or one for mconv alone)."""
    peers = [n for n in case["tools"] if n != "mconv"] or [None]
    out = []
    for p in peers:
        tr = pair(case, p, "transposes", "{}") if case["target"] == "tflite" else ""
        cells = [case["fixture"], f"{case['kind']} → {case['target']}", p or "–",
                 pair(case, p, "convert_s", "{:.2f}", ratio=True),
                 pair(case, p, "peak_rss", "{:.0f}", 2 ** 20, ratio=True),
                 pair(case, p, "ops", "{}"), tr, pair(case, p, "size", "{:.0f}", 2 ** 10),
                 pair(case, p, "max_abs_err", "{:.1e}"),
                 pair(case, p, "ms_1t", "{:.2f}", ratio=True),
                 pair(case, p, "ms_2t", "{:.2f}", ratio=True), notes(case, p)]
        out.append("| " + " | ".join(cells) + " |")
    return out


def notes(case: dict, peer: Optional[str]) -> str:
    """One-line errors of mconv and the peer (and of figures that failed)."""
    out = []
    for name in ("mconv", peer) if peer else ("mconv",):
        t = case["tools"].get(name, {})
        for k, v in t.items():
            if k == "error" or k.endswith("_error") or k.startswith("load_error"):
                out.append(f"{name}: {v}".replace("|", "/"))
    return "; ".join(out)


HEAD = ("| fixture | source → target | peer | convert s mconv / peer (ratio) | "
        "peak RSS MiB mconv / peer (ratio) | ops mconv / peer | TRANSPOSE | "
        "size KiB mconv / peer | max abs err mconv / peer | ms 1 thread mconv / peer (ratio) | "
        "ms 2 threads mconv / peer (ratio) | errors |")


def behind(cases: list, n: int = 3) -> list:
    """Every case where mconv failed and the peer converted, then the ``n`` (case, peer)
    pairs with the largest mconv / peer ratio (> 1) of a lower-is-better figure, each with
    all its figures over 1.05, as text lines."""
    fails, worst = [], []
    for c in cases:
        m = c["tools"].get("mconv", {})
        for p, r in c.get("ratios", {}).items():
            where = f"{c['fixture']} {c['kind']} → {c['target']} vs {p}"
            if m.get("error") and not c["tools"][p].get("error"):
                fails.append(f"{where}: mconv fails ({m['error']}), the peer converts")
            over = sorted(((v, k) for k, v in r.items() if k in BEHIND and v is not None
                           and v > 1.05), reverse=True)
            if over:
                worst.append((over[0][0], f"{where}: " + ", ".join(
                    f"{BEHIND[k]} {v:.2f}x" for v, k in over) + " the peer's"))
    worst.sort(key=lambda t: -t[0])
    return fails + [w for _, w in worst[:n]]


def scale_md(s: dict) -> list:
    """The scale check as lines."""
    if not s:
        return []
    lines = ["", f"## Scale check: {s.get('model', '')}", ""]
    if "error" in s:
        return lines + [f"not run: {s['error']}"]
    lines += [f"weights {s['weights'] / 2**30:.2f} GiB (external data)", "",
              "| target | wall s | peak RSS GiB | peak RSS / weights | max abs err vs ORT on "
              "the source | error |", "|---|---|---|---|---|---|"]
    for t in ("onnx", "ncnn"):
        r = s.get(t, {})
        err = r.get("error") or r.get("check_error") or ""
        lines.append(f"| {t} | {r.get('seconds')} | {r.get('peak_rss', 0) / 2**30:.2f} | "
                     f"{r.get('peak_rss_over_weights')} | "
                     f"{_num(r.get('max_abs_err'), '{:.1e}')} | {err} |")
    return lines


def markdown(res: dict) -> str:
    """The whole Markdown page of a result."""
    m = res["machine"]
    pk = ", ".join(f"{k} {v}" for k, v in {**m["packages"], **res["peers"]}.items())
    st = res.get("startup", {})
    lines = [f"# mconv bench {res['date']}", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}, "
             f"Python {m['python']}. Packages: {pk}.", "",
             f"Command: `{res['command']}`; conversion figures: median of up to "
             f"{res['options']['runs']} whole-process runs, ratios mconv / peer taken pair by "
             f"pair; latency: median of {res['options']['iters']} interleaved runs.", "",
             HEAD, "|---" * 12 + "|"]
    for c in res["cases"]:
        lines += rows(c)
    lines += ["", f"`mconv --help` start-up: {_num(st.get('mconv_help_s'), '{:.2f}')} s "
              f"(bare `python -c pass`: {_num(st.get('python_s'), '{:.2f}')} s)."]
    lines += ["", "## Where mconv is furthest behind", ""]
    lines += [f"{i}. {w}" for i, w in enumerate(behind(res["cases"]), 1)] or ["nowhere"]
    lines += scale_md(res.get("scale"))
    return "\n".join(lines) + "\n"
