"""``/docs``: Swagger UI served from this server, for closed networks.

FastAPI's own ``/docs`` loads Swagger UI from a CDN (jsdelivr), which a GPU cluster without internet
cannot reach. The assets here come from the installed ``fastapi-offline`` package (Swagger UI 5, which
renders OpenAPI 3.1; the ``swagger-ui-bundle`` package still ships 4.x, which refuses 3.1 schemas).
The page keeps the dashboard's strict CSP: its one inline bootstrap script is allowed by its SHA-256
hash, not by ``'unsafe-inline'``, and nothing is loaded from another origin. ReDoc is not served: its
styling needs inline styles, and Swagger UI covers the same schema.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Final

import fastapi_offline
from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from api.security import page_csp

DOCS_PATH: Final = "/docs"
ASSETS_PATH: Final = "/docs/assets"
ASSETS_DIR: Final = Path(fastapi_offline.__file__).resolve().parent / "static"
# name -> media type: only what the page uses is served.
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
# The files change only with the installed package; a day of caching spares 1.7 MB per page view.
ASSET_CACHE: Final = "public, max-age=86400"
# No online validator badge (it would call validator.swagger.io), no OAuth2 redirect page.
SWAGGER_PARAMETERS: Final = {"validatorUrl": None, "persistAuthorization": False}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH, response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """The interactive API reference; 'Authorize' takes an API key (bearer)."""
    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API reference",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )
    page.headers["content-security-policy"] = page_csp(script_hashes(bytes(page.body).decode()))
    return page


@router.get(ASSETS_PATH + "/{name}")
def asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"no documentation asset {name!r}")
    return FileResponse(ASSETS_DIR / name, media_type=media_type, headers={"Cache-Control": ASSET_CACHE})


def script_hashes(html: str) -> list[str]:
    """CSP source expressions (``'sha256-…'``) for every inline ``<script>`` of ``html``."""
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(html)
    ]
