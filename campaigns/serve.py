"""`valley serve`: a local dashboard of one campaign (Starlette, server-rendered HTML, no JavaScript).

Every page load reads the campaign afresh, so it shows what `valley add` or a lab robot recorded
a moment ago. The page holds the counts, the progress plot (and the Pareto plot with two or more
objectives), the best safe result, the open proposals with what the model expects of them, a form
to upload a CSV or Excel file of results (checked exactly as `valley add` checks it: a bad row
shows the same one-line error and stores nothing) and a button that proposes the next batch.
`/report` writes the full `valley report` into a temporary folder and shows it.

The server binds to 127.0.0.1: only this computer can reach it. `--host 0.0.0.0` exposes it on
purpose, and then anyone on the network can add data and propose.
"""

from __future__ import annotations

import contextlib
import html
import secrets
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from campaigns.campaign import Campaign
from campaigns.console import one_line, user_errors
from campaigns.report import (
    _html_table,
    campaign_history,
    plot_pareto,
    plot_progress,
    surrogate_diagnostics,
    write_report,
)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_UPLOAD_BYTES = 50 * 2**20
MAX_BATCH = 100
STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:auto;padding:0 1em}img{max-width:100%}"
    ".scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:90%}"
    "td,th{padding:2px 8px;border-bottom:1px solid #ddd}h1,h2,h3,p,li{overflow-wrap:anywhere}"
    ".error{color:#a00;font-weight:bold}.done{color:#060}form{margin:0.5em 0}"
)


def exposure_warning(host: str) -> str | None:
    """The warning to print when `host` lets other computers reach the dashboard; None for loopback."""
    if host in LOOPBACK:
        return None
    return (
        f"serving on {host}: anyone who can reach this computer on the network can see the campaign, "
        "add measurements and propose. Leave out --host to keep it on this computer (127.0.0.1)."
    )


def make_app(campaign_dir: str | Path, allowed_hosts: list[str] | None = None) -> Starlette:
    """The dashboard of the campaign in `campaign_dir` as an ASGI app.

    Args:
        campaign_dir: The campaign directory (opened afresh on every request).
        allowed_hosts: Host names the app answers to (others get 400: a guard against DNS
            rebinding); None answers to any.

    Raises:
        InputError: If `campaign_dir` is not a campaign.
    """
    campaign_dir = Path(campaign_dir)
    Campaign.open(campaign_dir)  # not a campaign: one error line now, not on every page
    work = Path(tempfile.mkdtemp(prefix="valley-serve-"))  # plots and the full report
    (work / "report").mkdir()
    flashes: dict[str, str] = {}  # one-time messages shown after a redirect (POST, then GET)
    lock = threading.Lock()  # one plot or report at a time: they share the files in `work`
    flash_lock = threading.Lock()

    def flash(message_html: str) -> str:
        token = secrets.token_urlsafe(8)
        with flash_lock:
            flashes[token] = message_html
            while len(flashes) > 100:
                flashes.pop(next(iter(flashes)))
        return token

    def page(request: Request, message_html: str = "", status_code: int = 200) -> HTMLResponse:
        try:
            camp = Campaign.open(campaign_dir)
        except user_errors() as e:  # the campaign was moved or its database damaged while serving
            return HTMLResponse(f"<!doctype html><meta charset='utf-8'>{_error(str(e))}", status_code=500)
        if not message_html:
            with flash_lock:
                message_html = flashes.pop(request.query_params.get("m", ""), "")
        return HTMLResponse(_dashboard(camp, message_html), status_code=status_code)

    def home(request: Request) -> Response:
        return page(request)

    # The form is read on the event loop; the work (SQLite, model fits) runs in a worker thread, so that the
    # page keeps answering while a batch is proposed.
    async def upload(request: Request) -> Response:
        if not _same_origin(request):
            return Response("Cross-site form posts are refused.", status_code=403)
        form = await request.form(max_files=1, max_fields=10)
        part = form.get("table")
        if part is None or isinstance(part, str) or not part.filename:
            return await run_in_threadpool(page, request, _error("choose a CSV or Excel file of results first."), 400)
        content = await part.read(MAX_UPLOAD_BYTES + 1)
        filename = Path(part.filename).name
        await form.close()
        return await run_in_threadpool(add_upload, request, filename, content)

    def add_upload(request: Request, filename: str, content: bytes) -> Response:
        if len(content) > MAX_UPLOAD_BYTES:
            return page(request, _error(f"{filename}: larger than {MAX_UPLOAD_BYTES // 2**20} MiB."), 400)
        try:
            message = _add_table(campaign_dir, filename, content)
        except user_errors() as e:
            return page(request, _error(str(e)), 400)
        return RedirectResponse(f"/?m={flash(message)}", status_code=303)

    async def propose(request: Request) -> Response:
        if not _same_origin(request):
            return Response("Cross-site form posts are refused.", status_code=403)
        form = await request.form(max_files=0, max_fields=10)
        return await run_in_threadpool(make_batch, request, str(form.get("n", "")).strip())

    def make_batch(request: Request, text: str) -> Response:
        if not text.isdigit() or not 1 <= int(text) <= MAX_BATCH:
            return page(request, _error(f"n must be a whole number from 1 to {MAX_BATCH}. Got {text!r} instead."), 400)
        try:
            proposals = Campaign.open(campaign_dir).propose(n=int(text))
        except user_errors() as e:
            return page(request, _error(str(e)), 400)
        attrs = proposals.attrs
        lines = [f"Proposed batch {attrs['batch_id']} ({attrs['method']}): {len(proposals)} experiment(s)."]
        lines += [f"note: {note}" for note in attrs["notes"]]
        message = "".join(f"<p class='done'>{html.escape(line)}</p>" for line in lines)
        message += f"<h3>Batch {attrs['batch_id']}</h3><div id='new-batch'>{_html_table(proposals)}</div>"
        return RedirectResponse(f"/?m={flash(message)}", status_code=303)

    def plot(request: Request) -> Response:
        name = request.path_params["name"]
        camp = Campaign.open(campaign_dir)
        if camp.measurements.empty or name not in ("progress", "pareto"):
            return Response("No such plot.", status_code=404)
        if name == "pareto" and len(camp.config.objectives) < 2:
            return Response("No such plot.", status_code=404)
        with lock:
            path = work / f"{name}.png"
            if name == "progress":
                plot_progress(campaign_history(camp), camp.config.objectives[0].name, path, None, _limit(camp), "")
            else:
                plot_pareto(camp, path)
            body = path.read_bytes()
        return Response(body, media_type="image/png", headers={"Cache-Control": "no-store"})

    def report(request: Request) -> Response:
        camp = Campaign.open(campaign_dir)
        if camp.measurements.empty:
            return page(request, _error("no measurements yet: add some before writing the report."), 400)
        with lock:
            write_report(camp, work / "report")
        return RedirectResponse("/report/index.html", status_code=303)

    def report_file(request: Request) -> Response:
        folder = (work / "report").resolve()
        path = (folder / request.path_params["path"]).resolve()
        if folder not in path.parents or not path.is_file():
            return Response("Not found. Open /report to write the report.", status_code=404)
        return FileResponse(path, headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", home),
        Route("/upload", upload, methods=["POST"]),
        Route("/propose", propose, methods=["POST"]),
        Route("/plot/{name}.png", plot),
        Route("/report", report),
        Route("/report/{path:path}", report_file),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        shutil.rmtree(work, ignore_errors=True)  # the plots and report written while serving

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def serve(campaign_dir: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the dashboard until interrupted (Ctrl+C). Binds to `host`; see `exposure_warning`."""
    import uvicorn

    allowed = [*LOOPBACK, "[::1]"] if host in LOOPBACK else None
    uvicorn.run(make_app(campaign_dir, allowed), host=host, port=port, log_level="warning")


# -- pieces ----------------------------------------------------------------------------------------


def _add_table(campaign_dir: Path, filename: str, content: bytes) -> str:
    """Record an uploaded table as `valley add` does; the HTML of what was done.

    Raises:
        InputError, DataFileError: The one-line error `valley add` prints; nothing is stored.
    """
    from data import read_table

    safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename) or "upload"
    with tempfile.TemporaryDirectory(prefix="valley-upload-") as folder:
        path = Path(folder) / safe_name
        path.write_bytes(content)
        camp = Campaign.open(campaign_dir)
        try:
            df = read_table(path)
            df.index = range(2, len(df) + 2)  # messages name the line in the file (header = line 1)
            report = camp.add_measurements(df, source=filename)
        except user_errors() as e:  # name the file as the user knows it, not its temporary copy
            e.args = (str(e).replace(str(path), filename),)
            raise
    lines = [f"warning: {line}" for line in report.warnings + report.duplicates]
    failed = f", {report.failed} failed run(s) (missing outcomes) kept" if report.failed else ""
    lines.append(f"Added {report.added} measurement(s){failed}; skipped {len(report.duplicates)} duplicate(s).")
    return "".join(f"<p class='done'>{html.escape(line)}</p>" for line in lines)


def _error(text: str) -> str:
    return f"<p class='error' id='error'>{html.escape('error: ' + one_line(text))}</p>"


def _same_origin(request: Request) -> bool:
    """A form post from this dashboard's own page (browsers send `Origin`); no header is a script, allowed."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _limit(camp) -> tuple[str, float] | None:
    return next(((s.name, s.upper) for s in camp.config.safety if s.upper is not None), None)


def _dashboard(camp, message_html: str) -> str:
    cfg = camp.config
    measured = camp.measurements
    failed = int((measured[cfg.outcomes].isna().any(axis=1) | measured["failed"].astype(bool)).sum())
    safe = int(camp.safe_successes(measured).sum()) if len(measured) else 0
    details = camp.open_proposal_details()
    version = len(measured)  # a new image URL once data arrive, so the browser does not show a stale plot
    body = [
        f"<h1>{html.escape(cfg.name)}</h1>",
        f"<p id='counts'>{len(measured)} measurement(s): {safe} safe and successful, {failed} failed; "
        f"{len(details)} open proposal(s). <a href='/'>Refresh</a> &middot; "
        "<a href='/report'>Full report</a> (cross-validates the model; may take a while)</p>",
        f"<div id='message'>{message_html}</div>",
        "<form id='upload' action='/upload' method='post' enctype='multipart/form-data'>"
        "<label>Results (CSV or Excel, as for <code>valley add</code>): "
        "<input type='file' name='table' accept='.csv,.xlsx,.xls' required></label> "
        "<button type='submit'>Add results</button></form>",
        "<form id='propose' action='/propose' method='post'>"
        f"<label>Batch size <input type='number' name='n' value='4' min='1' max='{MAX_BATCH}'></label> "
        "<button type='submit'>Propose the next batch</button> (fits the models: seconds to minutes)</form>",
    ]
    if measured.empty:
        body.append("<p>No measurements yet: upload a first table of results.</p>")
    else:
        body.append(f"<img src='/plot/progress.png?v={version}' alt='progress'>")
        if len(cfg.objectives) > 1:
            body.append(f"<img src='/plot/pareto.png?v={version}' alt='pareto'>")
    sections: list[tuple[str, str, pd.DataFrame]] = []
    if len(details):
        title = "Open proposals: what to run next, and what the model expects"
        sections.append(("open-proposals", title, details))
    if len(cfg.objectives) > 1 and len(measured):
        front = camp.pareto_front()
        if len(front):
            sections.append(("pareto-front", "Pareto front (safe, successful measurements)", front))
    best = camp.best()
    if best is not None:
        sections.append(("best", "Best safe result", best.rename("value").rename_axis("field").reset_index()))
    elif len(measured):
        body.append("<p>No safe measurement yet.</p>")
    body += [f"<h2>{html.escape(title)}</h2><div id='{key}'>{_html_table(df)}</div>" for key, title, df in sections]
    cached = surrogate_diagnostics(camp, compute=False) if len(measured) else None
    if cached is not None:  # only what `valley report` computed for this data: a page load stays fast
        verdicts = "".join(f"<li>{html.escape(str(v))}</li>" for v in cached[0]["verdict"])
        body.append(f"<h2>Surrogate calibration</h2><ul id='calibration'>{verdicts}</ul>")
    return (
        "<!doctype html><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        f"<title>{html.escape(cfg.name)}: Valley</title><style>{STYLE}</style>\n" + "\n".join(body)
    )
