"""The report page: one self-contained HTML file (styles, audio, plots inline; nothing fetched to open it)."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from afcot_core.api import BadInput
from afcot_report.collect import RunView, Sample, collect

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1d2330}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d6dbe4;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #d6dbe4;padding:.25rem .6rem;text-align:left}
td.n,th.n{text-align:right}code,pre{font:13px/1.4 ui-monospace,monospace}
pre{background:#f4f6f9;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
.sample{border:1px solid #d6dbe4;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
.accepted{border-left:5px solid #2e8b57}.rejected{border-left:5px solid #c0392b}.failed{border-left:5px solid #888}
.muted{color:#5b6577}dt{font-weight:600}dd{margin:0 0 .4rem 0}img.plot{max-width:100%}
.cot dd{white-space:pre-wrap}
"""


def _table(head: list[str], rows: list[list[str]], numeric: set[int], ident: str = "") -> str:
    attr = f' id="{ident}"' if ident else ""
    cells = "".join(f'<th{" class=n" if i in numeric else ""}>{escape(h)}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{escape(c)}</td>'
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table{attr}><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _markdown(text: str) -> str:
    """Markdown as the benchmark reports write it: headings, pipe tables, paragraphs."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            rows = [r for r in block[1:] if not all(set(c) <= set(":-") and c for c in r)]
            numeric = {j for j, c in enumerate(block[1]) if c.endswith(":")} if len(block) > 1 else set()
            out.append(_table(block[0], rows, numeric))
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 2, 6)
            out.append(f"<h{level}>{escape(line.lstrip('#').strip())}</h{level}>")
        elif line:
            out.append(f"<p>{escape(line)}</p>")
        i += 1
    return "\n".join(out)


def loss_svg(losses: list[tuple[int, float]], width: int = 640, height: int = 260) -> str:
    """The training loss by step as an inline SVG line chart."""
    pad_l, pad_r, pad_t, pad_b = 56, 16, 12, 36
    steps = [s for s, _ in losses]
    values = [v for _, v in losses]
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1.0
    first, last = min(steps), max(steps)
    span = last - first or 1

    def x(step: int) -> float:
        return pad_l + (step - first) / span * (width - pad_l - pad_r)

    def y(value: float) -> float:
        return pad_t + (hi - value) / (hi - lo) * (height - pad_t - pad_b)

    points = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in losses)
    ticks = "".join(f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.3g}</text>'
                    for v in (lo, (lo + hi) / 2, hi))
    axis = (f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" stroke="#889"/>'
            f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" stroke="#889"/>'
            f'<text x="{pad_l}" y="{height - 14}" font-size="11">step {first}</text>'
            f'<text x="{width - pad_r}" y="{height - 14}" font-size="11" text-anchor="end">step {last}</text>'
            f'<text x="{(width + pad_l) / 2}" y="{height - 4}" font-size="12" text-anchor="middle">step</text>')
    dots = "".join(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="2.5" fill="#2b5fad"/>' for s, v in losses)
    return (f'<svg class="plot" id="loss-curve" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="training loss by step">'
            f'{axis}{ticks}<polyline fill="none" stroke="#2b5fad" stroke-width="2" points="{points}"/>{dots}</svg>')


def _sample(sample: Sample, open_trace: bool = False) -> str:
    record, item = sample.record, sample.record.item
    parts = [f'<section class="sample {escape(record.verdict)}" data-id="{escape(item.id)}">',
             f"<h3>{escape(item.id)} <span class=muted>· {escape(record.strategy)} · {escape(record.verdict)}"
             "</span></h3>"]
    if sample.audio:
        data = base64.b64encode(sample.audio).decode()
        parts.append(f'<audio controls preload="metadata" src="data:{sample.audio_type};base64,{data}"></audio>')
    elif item.audio.path:
        parts.append(f"<p class=muted>audio: {escape(item.audio.path)} (not embedded)</p>")
    fields = [("question", item.question), ("choices", " · ".join(item.choices or []) or "—"),
              ("answer", item.answer)]
    if record.reason:
        fields.append(("reason", record.reason))
    parts.append("<dl>" + "".join(f"<dt>{k}</dt><dd>{escape(v)}</dd>" for k, v in fields) + "</dl>")
    if record.cot is not None:
        cot = record.cot
        parts.append('<div class="cot"><dl>' + "".join(
            f"<dt>{tag}</dt><dd>{escape(text)}</dd>" for tag, text in
            (("SUMMARY", cot.summary), ("CAPTION", cot.caption), ("REASONING", cot.reasoning),
             ("CONCLUSION", cot.conclusion))) + "</dl></div>")
    if record.trace:
        calls = "".join(f"<li><b>{escape(c.role)}</b> <span class=muted>{escape(c.model)}"
                        f"{' · with audio' if c.with_audio else ''}</span><pre>{escape(c.prompt)}</pre>"
                        f"<pre>→ {escape(c.reply)}</pre></li>" for c in record.trace)
        opened = " open" if open_trace else ""
        parts.append(f'<details class="trace"{opened}><summary>teacher trace ({len(record.trace)} calls)</summary>'
                     f"<ol>{calls}</ol></details>")
    parts.append("</section>")
    return "\n".join(parts)


def _yield_row(label: str, source: str, row: dict) -> list[str]:
    calls = row["calls_per_accepted"]
    per = "—" if calls["all"] is None else f"{calls['alm']:.2f} + {calls['llm']:.2f}"
    tokens = "—" if row["tokens_per_accepted"] is None else f"{row['tokens_per_accepted']:.0f}"
    return [label, source or "—", str(row["items"]), str(row["accepted"]), str(row["rejected"]), str(row["failed"]),
            f"{100 * row['yield']:.1f}", per, tokens]


def render(view: RunView) -> str:
    """The page for ``view``."""
    body = [f"<h1>Run {escape(view.name)}</h1>",
            f"<p class=muted>{escape(str(view.root))} · fingerprint <code>{escape(view.fingerprint)}</code></p>",
            '<h2 id="recipe">Recipe</h2>',
            f"<details><summary>recipe.lock.toml</summary><pre>{escape(view.lock)}</pre></details>",
            '<h2 id="generate">Generation</h2>']
    if view.stats is not None:
        rows = [_yield_row(r["strategy"], r["source"], r) for r in view.stats["rows"]]
        rows.append(_yield_row("all", "", view.stats["total"]))
        body.append(_table(["strategy", "source", "items", "accepted", "rejected", "failed", "yield (%)",
                            "calls / accepted (ALM + LLM)", "tokens / accepted"], rows, {2, 3, 4, 5, 6, 7, 8},
                           "yields"))
        body.append(f"<p class=muted>Tokens are estimated as {escape(view.stats['token_estimate'])}.</p>")
        reasons = view.stats["total"]["reject_reasons"]
        if reasons:
            body.append("<h3>Reject reasons</h3>")
            body.append(_table(["reason", "records"], [[k, str(n)] for k, n in reasons.items()], {1}, "reasons"))
        body.append("<h3>Accepted samples</h3>")
        body += [_sample(s, open_trace=i == 0) for i, s in enumerate(view.accepted)] or ["<p class=muted>none</p>"]
        body.append("<h3>Rejected samples</h3>")
        body += [_sample(s) for s in view.rejected] or ["<p class=muted>none</p>"]
    else:
        body.append("<p class=muted>This run has no generated records.</p>")
    body.append('<h2 id="train">Training</h2>')
    if view.losses:
        first, last = view.losses[0], view.losses[-1]
        body.append(f"<p>loss {first[1]:.4f} at step {first[0]} → {last[1]:.4f} at step {last[0]}</p>")
        body.append(loss_svg(view.losses))
    else:
        body.append("<p class=muted>No training steps logged.</p>")
    body.append('<h2 id="benchmarks">Benchmarks</h2>')
    for bench in view.benchmarks:
        body.append(f'<section class="benchmark" data-name="{escape(bench.name)}">{_markdown(bench.markdown)}')
        for name, png in bench.plots.items():
            data = base64.b64encode(png).decode()
            body.append(f'<figure><img class="plot" alt="{escape(bench.name)}: {escape(name)}" '
                        f'src="data:image/png;base64,{data}"><figcaption>{escape(name)}</figcaption></figure>')
        body.append("</section>")
    if not view.benchmarks:
        body.append("<p class=muted>No benchmark was evaluated.</p>")
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>afcot run {escape(view.name)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def render_variants(root: Path, compare_md: str, variants: list[str]) -> str:
    """The page of a recipe's variants (``root/compare.md``), each variant's own page linked."""
    links = "".join(f'<li><a href="{escape(name)}/report.html">{escape(name)}</a></li>' for name in variants)
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>afcot variants {escape(root.name)}</title><style>{STYLE}</style></head>\n<body>\n"
            f'<h1>Variants of {escape(str(root))}</h1>\n<section id="compare">{_markdown(compare_md)}</section>\n'
            f'<h2 id="variants">Variants</h2><ul>{links}</ul>\n</body></html>\n')


def write(root: Path, out: Path | None = None, samples: int = 3) -> Path:
    """Write the report of run ``root`` to ``out`` (default ``root/report.html``); for the folder of a recipe's
    variants (``compare.json``), the comparison, and each variant's own report in its folder."""
    if samples < 0:
        raise BadInput(f"--samples {samples}: must be >= 0")
    variants = (root / "compare.json").is_file() and not (root / "recipe.lock.toml").is_file()
    view = None if variants else collect(root, samples)
    target = out or root / "report.html"
    if target.is_dir():
        raise BadInput(f"{target}: is a folder; give the HTML file to write")
    if not target.parent.is_dir():
        raise BadInput(f"{target}: its folder {target.parent} does not exist")
    if view is None:
        import json

        names = [row["variant"] for row in json.loads((root / "compare.json").read_text(encoding="utf-8"))["variants"]]
        for name in names:
            write(root / name, samples=samples)
        target.write_text(render_variants(root, (root / "compare.md").read_text(encoding="utf-8"), names),
                          encoding="utf-8")
        return target
    target.write_text(render(view), encoding="utf-8")
    return target
