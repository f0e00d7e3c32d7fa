"""Self-contained HTML evaluation report: metric table with one-line docs, curves and sample detections.

The PNGs are written beside index.html and also embedded as base64, so the single HTML file renders on its
own (a KFP HTML artifact is one file).
"""

from __future__ import annotations

import base64
import html
import mimetypes
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelopsx.data.format import Dataset
from modelopsx.evaluation.metrics import EvaluationResult
from modelopsx.evaluation.plots import draw_samples, plot_miss_rate, plot_pr_curve
from modelopsx.metric_spec import (
    DEFAULT_CONFIDENCE,
    LOWER_IS_BETTER,
    METRIC_DOCS,
    METRIC_NAMES,
    confidence_label,
)

if TYPE_CHECKING:
    from modelopsx.gate.decision import Decision

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.doc { color: #555; font-size: 90%; }
.undefined { color: #a60; }
.better { color: #070; } .worse { color: #a00; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.figs img { max-width: 48%; min-width: 320px; }
.run { border: 1px solid #ccc; border-left: 6px solid #888; padding: 0.5em 1.2em; margin: 1em 0 2em 0; }
.run.promote { border-left-color: #070; } .run.keep { border-left-color: #a60; }
.run .sentence { font-size: 115%; }
.run table { margin: 0.5em 0; }
"""
# Where a run's section (the gate's decision) goes once the decision is known; the evaluation step writes
# the report before the gate runs.
RUN_SECTION_MARKER = "<!-- run section -->"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" title="{html.escape(path.name)}">'
    )


def _metric_rows(
    result: EvaluationResult,
    baseline: EvaluationResult | None,
    intervals: dict[str, tuple[float, float]] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> str:
    rows = []
    for name in METRIC_NAMES:
        value = result.metrics.get(name)
        cell = _fmt(value)
        if value is None:
            reason = result.undefined.get(name, "undefined")
            cell = f'<span class="undefined" title="{html.escape(reason)}">n/a: {html.escape(reason)}</span>'
        cells = [f"<td><code>{name}</code></td>", f'<td class="num">{cell}</td>']
        if intervals is not None:
            interval = intervals.get(name)
            shown = "" if interval is None else f"{interval[0]:.4f} .. {interval[1]:.4f}"
            cells.append(f'<td class="num">{shown}</td>')
        if baseline is not None:
            base = baseline.metrics.get(name)
            css = ""
            if value is not None and base is not None and name != "score_threshold" and value != base:
                better = (value < base) if name in LOWER_IS_BETTER else (value > base)
                css = ' class="num better"' if better else ' class="num worse"'
            cells.append(f"<td{css or ' class=num'}>{_fmt(base)}</td>")
        cells.append(f'<td class="doc">{html.escape(METRIC_DOCS[name])}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    baseline_header = "<th>baseline</th>" if baseline else ""
    interval_header = f"<th>{confidence_label(confidence)} interval</th>" if intervals is not None else ""
    header = f"<tr><th>metric</th><th>value</th>{interval_header}{baseline_header}<th>meaning</th></tr>"
    return "<table>" + header + "".join(rows) + "</table>"


def _dict_table(title: str, data: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td class=num>{html.escape(str(v))}</td></tr>"
        for k, v in data.items()
    )
    return f"<div><h3>{html.escape(title)}</h3><table>{rows}</table></div>"  # one block in a .figs row


def write_report(
    result: EvaluationResult,
    gt: Dataset,
    detections: list[dict[str, Any]],
    out_dir: Path,
    title: str = "Pedestrian detection evaluation",
    baseline: EvaluationResult | None = None,
    intervals: dict[str, tuple[float, float]] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Path:
    """Write out_dir/index.html, pr_curve.png, mr_fppi.png and samples.png; return the HTML path.

    `intervals` (bootstrap intervals by metric, at `confidence`) add a column to the metrics table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threshold = result.metrics.get("score_threshold")
    pr_png = plot_pr_curve(result, out_dir / "pr_curve.png", baseline)
    mr_png = plot_miss_rate(result, out_dir / "mr_fppi.png", baseline)
    samples_png = draw_samples(
        gt, detections, 0.5 if threshold is None else float(threshold), out_dir / "samples.png"
    )
    confusion = result.confusion
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        RUN_SECTION_MARKER,
        f"<p>{result.counts.get('images', 0)} images, {result.counts.get('pedestrians', 0)} pedestrians, "
        f"{result.counts.get('detections', 0)} detections; score threshold "
        f"{_fmt(threshold)} ({html.escape(result.score_threshold_source)}). Generated "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.</p>",
        "<h2>Metrics</h2>",
        _metric_rows(result, baseline, intervals, confidence),
        "<div class='figs'>",
        _dict_table(
            "Image-level confusion (pedestrian present?)",
            {
                "true positive (present, detected)": confusion.get("tp", 0),
                "false positive (absent, detected)": confusion.get("fp", 0),
                "false negative (present, missed)": confusion.get("fn", 0),
                "true negative (absent, no detection)": confusion.get("tn", 0),
            },
        ),
        _dict_table("Counts at the threshold (IoU 0.5)", result.counts),
        "</div><h2>Curves</h2><div class='figs'>",
        _img(pr_png, "precision-recall curve"),
        _img(mr_png, "miss rate vs false positives per image"),
        "</div><h2>Samples</h2>",
        "<p>Ground truth green, ignore regions and crowds dashed grey, detections at or above the threshold "
        "red with their score.</p>",
        _img(samples_png, "sample detections"),
        "</body></html>",
    ]
    path = out_dir / "index.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text("\n".join(parts))
    os.replace(tmp, path)
    return path


def run_section_html(facts: dict[str, str], decision: Decision | None) -> str:
    """A run's facts and its gate decision (the same sentence and table as the terminal's)."""
    from modelopsx.gate.render import plain_sentence, table_header, table_rows

    verdict = decision.decision if decision is not None else ""
    parts = [f"<section class='run {html.escape(verdict)}'><h2>This run</h2>"]
    parts.append(
        "<table>"
        + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts.items())
        + "</table>"
    )
    if decision is not None:
        parts.append(f"<h3>Decision: {html.escape(verdict)}</h3>")
        parts.append(f"<p class='sentence'>{html.escape(plain_sentence(decision))}</p>")
        rows = table_rows(decision)
        if rows:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in table_header(decision))
            body = "".join(
                "<tr>"
                + "".join(
                    f"<td class='num'>{html.escape(c)}</td>" if 0 < i < 5 else f"<td>{html.escape(c)}</td>"
                    for i, c in enumerate(row)
                )
                + "</tr>"
                for row in rows
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
            parts.append(
                "<p>Both models were scored on the same test images; the "
                f"{confidence_label(decision.confidence)} interval of each difference "
                "comes from resampling those images (paired bootstrap).</p>"
            )
    else:
        parts.append("<p>No gate decision was recorded for this run.</p>")
    parts.append("</section>")
    return "".join(parts)


def insert_run_section(report_html: str, section: str) -> str:
    """The report with `section` at its marker (after the title), replacing a section put there before."""
    start = report_html.find(RUN_SECTION_MARKER)
    if start >= 0:
        end = report_html.find("<!-- end of run section -->", start)
        end = end + len("<!-- end of run section -->") if end >= 0 else start + len(RUN_SECTION_MARKER)
        return (
            report_html[:start]
            + RUN_SECTION_MARKER
            + section
            + "<!-- end of run section -->"
            + report_html[end:]
        )
    title_end = report_html.find("</h1>")
    cut = title_end + len("</h1>") if title_end >= 0 else len(report_html)
    return report_html[:cut] + section + report_html[cut:]


def confusion_matrix(confusion: dict[str, int]) -> tuple[list[str], list[list[int]]]:
    """Image-level confusion as KFP expects it: rows are the truth, columns the prediction."""
    categories = ["pedestrian", "no pedestrian"]
    tp, fn = int(confusion.get("tp", 0)), int(confusion.get("fn", 0))
    fp, tn = int(confusion.get("fp", 0)), int(confusion.get("tn", 0))
    return categories, [[tp, fn], [fp, tn]]


def self_contained_html(report_dir: str | Path, out_file: str | Path) -> Path:
    """Copy report_dir/index.html to out_file with its local images inlined as data URIs.

    The KFP UI shows an HTML artifact as one file, so relative image links would break there.
    """
    report_dir, out_file = Path(report_dir), Path(out_file)
    html = (report_dir / "index.html").read_text()

    def inline(match: re.Match[str]) -> str:
        ref = match.group(2)
        path = report_dir / ref
        if ref.startswith(("data:", "http:", "https:", "/")) or not path.is_file():
            return match.group(0)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = base64.b64encode(path.read_bytes()).decode()
        return f'{match.group(1)}"data:{mime};base64,{data}"'

    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(re.sub(r'(src=)"([^"]+)"', inline, html))
    return out_file
