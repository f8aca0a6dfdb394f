"""The web layer: thin routes over :mod:`vcops.dashboard` (read models) and
:mod:`vcops.decisions` (issue a payload, record a signed decision), the same functions
the CLI calls; pages are server-rendered, autoescaped Jinja2 from ``templates/web/``
with no JavaScript.

Security: every response carries a restrictive Content-Security-Policy (no scripts at
all, styles and images from this server only, forms post only here, no framing).
Reading pages may need a token (``[web] token_file``: ``Authorization: Bearer``, or
``?token=`` once, kept in a cookie that holds the token itself, no session). Decisions
need no token and no password: the SSH signature is the authentication, verified
exactly as ``vcops window approve --signature`` verifies it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2 import Environment

from vcops import dashboard
from vcops.config import Config
from vcops.decisions import issue_payload, mail_outcome, record_decision
from vcops.errors import ApprovalError, VcopsError, WindowError
from vcops.findings_store import score_history
from vcops.inventory import Inventory, load_inventory
from vcops.paths import templates_dir
from vcops.report.chart import trend_png
from vcops.store import Store
from vcops.templating import environment
from vcops.window.approval import NAMESPACE
from vcops.window.model import Decision

CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
MAX_SIGNATURE_BYTES = 16_000
TOKEN_COOKIE = "vcops_token"  # noqa: S105 - the cookie name, not a secret


def _read_token(config: Config) -> str | None:
    if not config.web.token_file:
        return None
    path = config.path(config.web.token_file)
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise VcopsError(f"{path}: cannot read the web token file: {exc.strerror}") from exc
    if len(token) < 16:
        raise VcopsError(f"{path}: the web token must be at least 16 characters")
    return token


def create_app(config: Config, inventory_dir: Path, store: Store) -> FastAPI:
    """The ASGI app for one controller (its config, inventory directory and store)."""
    app = FastAPI(title="vcops", docs_url=None, redoc_url=None, openapi_url=None)
    env: Environment = environment("report")
    token = _read_token(config)

    def inventory() -> Inventory:
        return load_inventory(inventory_dir)

    def page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
        html = env.get_template(f"web/{name}.html.j2").render(
            nav=request.url.path, base=str(request.base_url).rstrip("/"), **context
        )
        return HTMLResponse(html, status_code=status)

    @app.middleware("http")
    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        decision = request.method == "POST" and request.url.path.startswith("/windows/")
        if token is not None and not decision:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            given = (
                given or request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE, "")
            )
            if not hmac.compare_digest(given.encode(), token.encode()):
                response: Response = PlainTextResponse(
                    "vcops: a token is needed to read these pages", status_code=401
                )
            else:
                response = await call_next(request)
                if request.query_params.get("token"):
                    response.set_cookie(
                        TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=False
                    )
        else:
            response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(VcopsError)
    async def vcops_error(request: Request, exc: VcopsError) -> HTMLResponse:
        status = 404 if isinstance(exc, WindowError) else 400
        return page(request, "error", status, message=str(exc))

    @app.get("/static/vcops.css")
    def css() -> Response:
        return Response((templates_dir() / "web" / "vcops.css").read_bytes(), media_type="text/css")

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        return page(request, "overview", ov=dashboard.overview(inventory(), store))

    @app.get("/chart/trend.png")
    def chart() -> Response:
        history = score_history(store, 30)
        return Response(trend_png(history, width=8.0, height=3.0), media_type="image/png")

    @app.get("/hosts/{name:path}", response_class=HTMLResponse)
    def host(request: Request, name: str) -> HTMLResponse:
        view = dashboard.host_view(inventory(), store, name, config.snapshots_dir)
        return page(request, "host", h=view)

    @app.get("/controls/{control_id}", response_class=HTMLResponse)
    def control(request: Request, control_id: str) -> HTMLResponse:
        return page(request, "control", c=dashboard.control_view(inventory(), store, control_id))

    @app.get("/windows", response_class=HTMLResponse)
    def windows(request: Request) -> HTMLResponse:
        return page(request, "windows", rows=dashboard.windows_list(inventory(), store))

    def window_page(
        request: Request, window_id: str, status: int = 200, **extra: object
    ) -> HTMLResponse:
        inv = inventory()
        view = dashboard.window_view(inv, store, window_id)
        members = [m.name for m in inv.change_board.members]
        context: dict[str, object] = {"refused": None, "recorded": None, "mail": []} | extra
        return page(
            request, "window", status, w=view, members=members, namespace=NAMESPACE, **context
        )

    @app.get("/windows/{window_id}", response_class=HTMLResponse)
    def window(request: Request, window_id: str) -> HTMLResponse:
        return window_page(request, window_id)

    @app.post("/windows/{window_id}/payload")
    def payload(
        window_id: str,
        member: Annotated[str, Form(max_length=200)],
        decision: Annotated[Decision, Form()],
        comment: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        issued = issue_payload(
            store, inventory(), window_id,
            member=member, decision=decision, comment=comment, now=datetime.now(UTC),
        )  # fmt: skip
        return Response(
            issued.data,
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{issued.filename}"'},
        )

    @app.post("/windows/{window_id}/decision", response_class=HTMLResponse)
    async def decide(
        request: Request,
        window_id: str,
        member: Annotated[str, Form(max_length=200)],
        decision: Annotated[Decision, Form()],
        comment: Annotated[str, Form(max_length=2000)] = "",
        signature_text: Annotated[str, Form(max_length=MAX_SIGNATURE_BYTES)] = "",
        signature_file: UploadFile | None = None,
    ) -> HTMLResponse:
        signature = signature_text
        if signature_file is not None and signature_file.filename:
            raw = await signature_file.read(MAX_SIGNATURE_BYTES + 1)
            signature = raw[:MAX_SIGNATURE_BYTES].decode("utf-8", errors="replace")
        inv, now = inventory(), datetime.now(UTC)
        try:
            outcome = record_decision(
                inv, store, window_id,
                member=member, decision=decision, comment=comment, signature=signature,
                now=now, recorded_by=f"web:{request.client.host if request.client else '?'}",
            )  # fmt: skip
        except ApprovalError as exc:
            return window_page(request, window_id, 400, refused=str(exc))
        deliveries = mail_outcome(config, inv, store, outcome, comment, now=now)
        return window_page(
            request,
            window_id,
            recorded=f"{outcome.member}: {outcome.decision} recorded (signature verified); "
            f"approvals {outcome.approvals}/{outcome.quorum}; state {outcome.state}",
            mail=[d.subject or d.skipped_reason for d in deliveries],
        )

    @app.get("/audit", response_class=HTMLResponse)
    def audit(request: Request, last: int = 200) -> HTMLResponse:
        verdict = dashboard.audit_verdict(store)
        entries = store.audit_entries(limit=max(1, min(last, 2000)))
        return page(request, "audit", verdict=verdict, entries=list(reversed(entries)))

    return app
