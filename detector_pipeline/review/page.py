"""The review page: a batch's review queue as thumbnails, each marked `ai`, `real` or `unsure` (with
an optional note) by mouse or keyboard, saved at once to the reviewer's verdict file under
data/verdicts/ (verdicts.record_verdicts). `detector-pipeline review BATCH --serve` serves it with
uvicorn; only the queue's images are served, by rank, never by a path from the request."""

import html
import io
import json
from pathlib import Path

import pandas as pd
from PIL import Image, ImageOps
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from detector_pipeline.data.images import open_rgb
from detector_pipeline.review import verdicts

THUMB = 320

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Review {batch}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem 2rem; background: #fafafa; }}
header {{ position: sticky; top: 0; background: #fafafa; padding: .5rem 0; border-bottom: 1px solid #ddd; }}
kbd {{ border: 1px solid #999; border-radius: 3px; padding: 0 .3em; background: #fff; }}
#cards {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 1rem; margin-top: 1rem; }}
.card {{ background: #fff; border: 2px solid #ddd; border-radius: 6px; padding: .5rem; }}
.card.current {{ border-color: #1a5fb4; box-shadow: 0 0 0 3px #99c1f1; }}
.card img {{ width: 100%; height: 320px; object-fit: contain; background: #eee; }}
.card .facts {{ font-size: .9rem; margin: .3rem 0; }}
.card button {{ font-size: 1rem; margin-right: .3rem; }}
.card input {{ width: 95%; margin-top: .3rem; }}
.card[data-verdict=ai] {{ border-color: #c01c28; }} .card[data-verdict=real] {{ border-color: #26a269; }}
.card[data-verdict=unsure] {{ border-color: #e5a50a; }}
.verdict {{ font-weight: bold; }}
</style></head>
<body>
<header><h1>Review queue of batch {batch}</h1>
<p>{n} images where detector {model} and the teacher disagree most (threshold {threshold:.3f}). Reviewer
<b id="reviewer">{reviewer}</b>; verdicts are saved to <code>{verdict_file}</code> as you mark them.</p>
<p>Keys: <kbd>j</kbd>/<kbd>k</kbd> next/previous, <kbd>a</kbd> AI, <kbd>r</kbd> real, <kbd>u</kbd> unsure,
<kbd>n</kbd> note (Enter saves it). <span id="status" role="status">{done} of {n} marked</span></p></header>
<main id="cards">{cards}</main>
<script>
const cards = [...document.querySelectorAll('.card')];
let current = 0;
function focusCard(i) {{
  current = Math.max(0, Math.min(cards.length - 1, i));
  cards.forEach((c, j) => c.classList.toggle('current', j === current));
  cards[current].scrollIntoView({{block: 'nearest'}});
}}
async function mark(card, verdict) {{
  const note = card.querySelector('input').value;
  const response = await fetch('verdicts', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},
    body: JSON.stringify({{rank: Number(card.dataset.rank), verdict: verdict, note: note}})}});
  const answer = await response.json();
  if (!response.ok) {{ document.getElementById('status').textContent = 'not saved: ' + answer.error; return false; }}
  card.dataset.verdict = verdict;
  card.querySelector('.verdict').textContent = verdict;
  document.getElementById('status').textContent = answer.marked + ' of ' + cards.length + ' marked (saved)';
  return true;
}}
cards.forEach((card, i) => {{
  card.addEventListener('click', () => focusCard(i));
  card.querySelectorAll('button').forEach(b => b.addEventListener('click', async () => {{
    focusCard(i); if (await mark(card, b.dataset.verdict)) focusCard(i + 1); }}));
  card.querySelector('input').addEventListener('keydown', async e => {{
    if (e.key === 'Enter') {{ e.target.blur(); if (card.dataset.verdict) await mark(card, card.dataset.verdict); }}
    e.stopPropagation(); }});
}});
document.addEventListener('keydown', async e => {{
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const keys = {{a: 'ai', r: 'real', u: 'unsure'}};
  if (e.key === 'j' || e.key === 'ArrowDown') focusCard(current + 1);
  else if (e.key === 'k' || e.key === 'ArrowUp') focusCard(current - 1);
  else if (e.key === 'n') {{ e.preventDefault(); cards[current].querySelector('input').focus(); }}
  else if (keys[e.key] && await mark(cards[current], keys[e.key])) focusCard(current + 1);
}});
focusCard(0);
</script></body></html>"""

CARD = """<section class="card" data-rank="{rank}" data-verdict="{verdict}" aria-label="image {rank}">
<a href="image/{rank}?full=1" target="_blank"><img src="image/{rank}" alt="image {rank}: {name}" loading="lazy"></a>
<div class="facts">#{rank} {kind}<br>teacher {ai_score:.2f} · detector P(AI) {p_ai:.2f} · <span class="verdict">{verdict}</span>
<br><small>{name}</small></div>
<button data-verdict="ai">AI (a)</button><button data-verdict="real">Real (r)</button><button data-verdict="unsure">Unsure (u)</button>
<input type="text" placeholder="note (n)" value="{note}" aria-label="note for image {rank}">
</section>"""


def _existing(data_dir: Path, reviewer: str) -> dict[str, dict]:
    path = data_dir / verdicts.VERDICTS_DIR / verdicts.reviewer_file_name(reviewer)
    if not path.is_file():
        return {}
    return {r["sha256"]: r for r in pd.read_parquet(path).to_dict("records")}


def review_app(data_dir: Path, batch: str, queue: pd.DataFrame, evaluation: dict, reviewer: str) -> Starlette:
    """The page for one batch's queue (the review_queue parquet) and one reviewer."""
    verdict_file = data_dir / verdicts.VERDICTS_DIR / verdicts.reviewer_file_name(reviewer)
    by_rank = {int(r["rank"]): r for r in queue.to_dict("records")}

    def page(request: Request) -> HTMLResponse:
        saved = _existing(data_dir, reviewer)
        cards = "".join(CARD.format(
            rank=int(r["rank"]), kind=html.escape(str(r.get("kind", ""))), ai_score=float(r["ai_score"]),
            p_ai=float(r["p_ai"]), name=html.escape(Path(str(r["file"])).name),
            verdict=html.escape(saved.get(r["sha256"], {}).get("verdict", "")),
            note=html.escape(saved.get(r["sha256"], {}).get("note", ""), quote=True)) for r in by_rank.values())
        done = sum(1 for r in by_rank.values() if r["sha256"] in saved)
        return HTMLResponse(PAGE.format(batch=html.escape(batch), n=len(by_rank), model=html.escape(str(evaluation["model_version"])),
                                        threshold=float(evaluation["threshold"]), reviewer=html.escape(reviewer),
                                        verdict_file=html.escape(str(verdict_file)), done=done, cards=cards))

    def image(request: Request) -> Response:
        row = by_rank.get(int(request.path_params["rank"]))
        if row is None:
            return Response("no such image in this queue", status_code=404)
        path = data_dir / str(row["file"])
        try:
            picture = open_rgb(path)
        except Exception:  # noqa: BLE001 (a file gone since scoring: the page says so, the rest works)
            return Response(f"{path.name} can't be read", status_code=404)
        if not request.query_params.get("full"):
            picture = ImageOps.contain(picture, (THUMB, THUMB), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG" if request.query_params.get("full") else "JPEG", quality=90)
        return Response(buffer.getvalue(), media_type="image/png" if request.query_params.get("full") else "image/jpeg")

    async def record(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
            row = by_rank[int(body["rank"])]
            verdict = str(body["verdict"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "send JSON with rank (of this queue) and verdict"}, status_code=400)
        if verdict not in verdicts.VERDICTS:
            return JSONResponse({"error": f"verdict must be one of {', '.join(verdicts.VERDICTS)}"}, status_code=400)
        entry = {"sha256": row["sha256"], "image_path": str(row["file"]), "verdict": verdict,
                 "note": str(body.get("note", ""))[:500]}
        await run_in_threadpool(verdicts.record_verdicts, data_dir, reviewer, [entry])  # a lock: off the event loop
        saved = await run_in_threadpool(_existing, data_dir, reviewer)
        return JSONResponse({"saved": True, "file": str(verdict_file),
                             "marked": sum(1 for r in by_rank.values() if r["sha256"] in saved)})

    return Starlette(routes=[Route("/", page), Route("/image/{rank:int}", image),
                             Route("/verdicts", record, methods=["POST"])])


def serve(app: Starlette, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")
