"""/admin/import (the upload form and the result page) and /api/admin/import (the same for
scripts). Admins only. The import runs in a thread with its own database engine, its rows
checked in a worker process, so the server's event loop keeps serving calls meanwhile; one
import runs at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

import agent_desktop.imports.uploads as uploads
from agent_desktop.common.audit import audit
from agent_desktop.common.guards import context, current_user, require_roles
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.common.pages import add_nav, render
from agent_desktop.context import AppContext
from crm_core.db import Database
from crm_core.errors import ValidationError
from crm_core.importing import ImportOptions, ImportReport, get_kind, kind_names, run_import
from crm_core.settings import Settings

LOCK_KEY = web.AppKey("hotline.import_lock", asyncio.Lock)
RESULTS_KEY = web.AppKey("hotline.import_results", uploads.Results)


def _run_in_thread(settings: Settings, path: Path, options: ImportOptions) -> ImportReport:
    async def run() -> ImportReport:
        db = Database.open(settings)
        try:
            return await run_import(db, path, options)
        finally:
            await db.close()

    return asyncio.run(run())


def _options(fields: dict[str, str], filename: str, user_id: int, report: Path) -> ImportOptions:
    kind = fields.get("kind", "")
    if kind not in kind_names():
        raise ValidationError(f"choose what the file holds: {', '.join(kind_names())}")
    return ImportOptions(
        kind=kind,
        dry_run=fields.get("dry_run", "") in ("1", "on", "true", "yes"),
        sheet=fields.get("sheet") or None,
        user_id=user_id,
        report_path=report,
        source_name=filename,
        parallel=True,
    )


async def _import(request: web.Request) -> dict[str, Any]:
    ctx = context(request)
    user = current_user(request)
    lock, results = request.app[LOCK_KEY], request.app[RESULTS_KEY]
    if lock.locked():
        raise uploads.ImportBusy("another import is running; try again when it is done")
    async with lock:
        token = results.new_token()
        with uploads.temp_dir() as workdir:
            upload = await uploads.receive(request, Path(workdir), uploads.MAX_UPLOAD_BYTES)
            options = _options(upload.fields, upload.filename, user.id, results.report_path(token))
            report = await asyncio.to_thread(_run_in_thread, ctx.settings, upload.path, options)
    summary = {
        **report.as_dict(),
        "report": None,
        "problems": len(report.problems),
        "token": token,
        "result_url": f"/admin/import/results/{token}",
        "report_url": f"/admin/import/reports/{token}.csv",
    }
    results.save(token, summary)
    detail = {"kind": report.kind, "file": report.source, "dry_run": report.dry_run}
    detail["counts"] = summary["counts"]
    ip = client_ip(request, ctx.settings)
    await audit(ctx, user, "customer_import", "import", token, ip, detail)
    return summary


@require_roles("admin")
async def upload_page(request: web.Request) -> web.Response:
    kinds = [(name, get_kind(name).label) for name in kind_names()]
    limit_mb = uploads.MAX_UPLOAD_BYTES // (1024 * 1024)
    return render(request, "imports_upload.html", kinds=kinds, limit_mb=limit_mb)


@require_roles("admin")
async def upload_form(request: web.Request) -> web.Response:
    summary = await _import(request)
    raise web.HTTPSeeOther(location=summary["result_url"])


@require_roles("admin")
async def upload_api(request: web.Request) -> web.Response:
    return web.json_response(await _import(request))


@require_roles("admin")
async def result_page(request: web.Request) -> web.Response:
    summary = request.app[RESULTS_KEY].load(request.match_info["token"])
    return render(request, "imports_result.html", result=summary)


@require_roles("admin")
async def result_api(request: web.Request) -> web.Response:
    return web.json_response(request.app[RESULTS_KEY].load(request.match_info["token"]))


@require_roles("admin")
async def report_csv(request: web.Request) -> web.FileResponse:
    token = request.match_info["token"]
    path = request.app[RESULTS_KEY].report_path(token)
    if not path.is_file():
        raise web.HTTPNotFound(reason="no such error report")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="import-errors-{token[:8]}.csv"',
        },
    )


@require_roles("admin")
async def kinds_api(_request: web.Request) -> web.Response:
    kinds = [
        {"name": n, "label": get_kind(n).label, "fields": get_kind(n).fields} for n in kind_names()
    ]
    return web.json_response({"kinds": kinds, "max_upload_bytes": uploads.MAX_UPLOAD_BYTES})


def setup(app: web.Application, ctx: AppContext) -> None:
    app[LOCK_KEY] = asyncio.Lock()
    app[RESULTS_KEY] = uploads.Results(Path(ctx.settings.var_dir) / "imports" / "web")
    app.router.add_get("/admin/import", upload_page)
    app.router.add_post("/admin/import", upload_form)
    app.router.add_get("/admin/import/results/{token}", result_page)
    app.router.add_get("/admin/import/reports/{token}.csv", report_csv)
    app.router.add_get("/api/admin/import/kinds", kinds_api)
    app.router.add_post("/api/admin/import", upload_api)
    app.router.add_get("/api/admin/import/{token}", result_api)
    add_nav(app, "/admin/import", "Data import", ("admin",))
