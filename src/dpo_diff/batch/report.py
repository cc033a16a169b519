"""A static HTML report of a batch run: no server, no CDN, every prompt text escaped."""

from __future__ import annotations

import difflib
import html
import json
from pathlib import Path

from ..task import get_task
from .evaluate import load_runs, plot, summarize, task_sign, to_markdown

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.35em .5em;vertical-align:top}
th{background:#f3f3f3}th.sortable{cursor:pointer}th.sortable:after{content:" \\2195";color:#999}
mark{background:#ffe27a}img.pair{image-rendering:pixelated;width:360px;display:block;margin-bottom:.3em}
.flag{background:#b3261e;color:#fff;border-radius:3px;padding:0 .3em;font-size:.85em}
.plots img{height:300px;margin-right:1em}.neg{color:#7a2a2a}.small{color:#666;font-size:.9em}
"""

SCRIPT = """
function sortBy(col){const t=document.getElementById('prompts');const rows=[...t.tBodies[0].rows];
const dir=t.dataset.dir==='desc'?1:-1;t.dataset.dir=dir===1?'asc':'desc';
rows.sort((a,b)=>dir*(parseFloat(a.dataset[col])-parseFloat(b.dataset[col])));
rows.forEach(r=>t.tBodies[0].appendChild(r));}
window.addEventListener('load',()=>{const imgs=[...document.images];
const ok=imgs.filter(i=>i.complete&&i.naturalWidth>0).length;
document.body.dataset.imagesLoaded=ok+'/'+imgs.length;});
"""


def highlight(original: str, new: str) -> str:
    """``new`` with the words that differ from ``original`` in <mark>, all text escaped."""
    a, b = original.split(), new.split()
    out = []
    for op, _i1, _i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        words = html.escape(" ".join(b[j1:j2]))
        if words:
            out.append(words if op == "equal" else f"<mark>{words}</mark>")
    return " ".join(out)


def _judged_cell(data: dict, held: dict | None, task) -> str:
    """The world judge's faithfulness, initial -> best (held-out seeds when evaluated), flagged when it falls."""
    source = held if held and "faithfulness" in held.get("best", {}) else data
    f0, f1 = source.get("initial", {}).get("faithfulness"), source.get("best", {}).get("faithfulness")
    if f0 is None or f1 is None:
        return '<td class="judged">-</td>'
    flag = ' <span class="flag">flagged</span>' if task.flagged(f0, f1) else ""
    return f'<td class="judged">{100 * f0:.0f} % -> {100 * f1:.0f} %{flag}</td>'


def write_report(folder: str | Path) -> Path:
    folder = Path(folder)
    runs = load_runs([folder])
    name, config, rows = runs[0]
    task = config.get("task", "enhance")
    table = summarize(runs)
    plots = plot(runs, folder)
    sign = task_sign(config)
    body = []
    for i, r in enumerate(rows):
        data = json.loads(r["result_json"])
        change = sign * (r["initial_loss"] - r["best_loss"])
        pairs = "".join(
            f'<img class="pair" src="{html.escape(r["image_dir"])}/{html.escape(n)}" alt="seed {s}: initial | best">'
            for s, n in zip(data["seeds"], data.get("images", []))
        )
        negative = r["best_negative_prompt"] or ""
        held = data.get("held_out")
        held_cells = (
            f'<td>{held["initial"]["loss"]:.4f} -> {held["best"]["loss"]:.4f}'
            f'<div class="small">{sign * (held["initial"]["loss"] - held["best"]["loss"]):+.4f}</div></td>'
            if held else "<td>-</td>"
        )
        judged_cell = _judged_cell(data, held, get_task(task))
        body.append(
            f'<tr data-change="{change:.6f}" data-index="{i}" data-initial="{r["initial_loss"]:.6f}">'
            f'<td>{html.escape(r["source"])}:{html.escape(str(r["row_id"]))}</td>'
            f'<td>{html.escape(r["prompt"])}</td>'
            f'<td>{highlight(r["prompt"], r["best_prompt"])}'
            + (f'<div class="neg">negative: <mark>{html.escape(negative)}</mark></div>' if negative else "")
            + f'</td><td>{r["initial_loss"]:.4f}</td><td>{r["best_loss"]:.4f}</td><td>{change:+.4f}</td>'
            f"{held_cells}{judged_cell}<td>{pairs}</td></tr>"
        )
    summary_rows = "".join(
        f"<tr><td>{html.escape(str(t['source']))}</td><td>{t['prompts']}</td>"
        f"<td>{t['initial_mean']:.4f} ± {t['initial_std']:.4f}</td><td>{t['best_mean']:.4f} ± {t['best_std']:.4f}</td>"
        f"<td>{t['change_mean']:+.4f}</td><td>{100 * t['share']:.0f} %</td>"
        + (f"<td>{t['held_out_change_mean']:+.4f} ± {t['held_out_change_sem']:.4f}</td><td>{100 * t['held_out_share']:.0f} %</td>"
           if t.get("held_out_change_mean") is not None else "<td>-</td><td>-</td>")
        + (f"<td>{100 * t['held_out_initial_faithfulness']:.0f} % -> {100 * t['held_out_best_faithfulness']:.0f} %</td>"
           if t.get("held_out_best_faithfulness") is not None else "<td>-</td>")
        + f"<td>{t.get('held_out_flagged') or 0}</td>"
        + f"<td>{t['cost_mean']:.0f}</td></tr>"
        for t in table
    )
    settings = ", ".join(f"{k}={v}" for k, v in sorted(config.items()) if v is not None)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dpo-diff report: {html.escape(name)}</title>
<style>{STYLE}</style><script>{SCRIPT}</script></head>
<body data-images-loaded="0/0">
<h1>dpo-diff {html.escape(task)} report</h1>
<p class="small">{html.escape(settings)}</p>
<h2>Summary</h2>
<table id="summary"><thead><tr><th>source</th><th>prompts</th><th>initial loss</th><th>best loss</th>
<th>mean change (search seeds)</th><th>{'improved' if task == 'enhance' else 'broken'} (search seeds)</th>
<th>mean change (held-out seeds)</th><th>{'improved' if task == 'enhance' else 'broken'} (held-out seeds)</th>
<th>judged (held-out, initial -> best)</th><th>flagged</th>
<th>cost / prompt (denoiser-pass equivalents)</th></tr></thead>
<tbody>{summary_rows}</tbody></table>
<div class="plots">{''.join(f'<img src="{p}" alt="{p}">' for p in plots)}</div>
<h2>Prompts</h2>
<p class="small">Losses: CLIP distance to the prompt, {'lower' if task == 'enhance' else 'higher'} is the goal; change is in
the task's direction. Held-out: the initial and best prompt re-rendered on seeds the search never saw.
Judged: on the bundled world, the pixel judge's share of the prompt's attributes drawn (higher: more
faithful; held-out seeds when there are any); an enhanced prompt it reads as less faithful is flagged
and not counted as improved.
Images: initial (left) | best (right), one pair per search seed. Click a header to sort.</p>
<table id="prompts"><thead><tr><th>row</th><th>prompt</th><th>best prompt / negative prompt</th>
<th class="sortable" onclick="sortBy('initial')">initial loss</th><th>best loss</th>
<th class="sortable" onclick="sortBy('change')">change</th><th>held-out loss (initial -> best)</th>
<th class="judged">judged faithfulness (initial -> best)</th><th>images</th></tr></thead>
<tbody>{''.join(body)}</tbody></table>
</body></html>
"""
    (folder / "evaluation.md").write_text(to_markdown(table))
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
