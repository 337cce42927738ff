"""Open the built documentation in a headless Chromium: no console error, screenshots.

First, without a browser: every relative link of every built page points to a file that
exists (run even when no browser is available).

Serves ``docs/_build/html`` on a local port, visits a set of pages (home, API index, an
API page, the gallery and one example, benchmarks, a design note, search), fails when a page
logs a console error, raises an uncaught exception, or a request it makes fails; writes a
full-page screenshot of each page to ``docs/_build/screenshots/``.

    python docs/check_html.py [--html DIR] [--browser PATH] [--if-available]

Needs the ``playwright`` Python package and a Chromium: playwright's own
(``playwright install chromium``) or a system one (``--browser``, ``$GEOML_CHROMIUM``,
``chromium`` / ``chromium-browser`` / ``google-chrome`` on the PATH). ``--if-available``
turns a missing playwright or browser into a note and exit 0 (CI without a browser).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import sys
import threading
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGES = [
    "index.html",
    "install.html",
    "api/index.html",
    "api/geoml.spectral.html",
    "api/generated/geoml.spectral.LaplacianEigenmap.html",
    "auto_examples/index.html",
    "auto_examples/plot_swiss_roll.html",
    "auto_examples/plot_eeg_pipeline.html",
    "benchmarks.html",
    "design/kernels.html",
    "search.html?q=sinkhorn",
]


def find_browser(explicit: str | None) -> str | None:
    """Path of a Chromium executable, or None for playwright's own."""
    for cand in (explicit, os.environ.get("GEOML_CHROMIUM")):
        if cand:
            return cand
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def broken_links(root: Path) -> list[str]:
    """Relative ``href``/``src`` targets of the built pages that do not exist."""
    bad = []
    for page in sorted(root.rglob("*.html")):
        rel = page.relative_to(root).parts
        if rel[0] in ("_static", "_sources", "_modules"):
            continue
        for link in re.findall(r'(?:href|src)="([^"#?]+)', page.read_text(errors="ignore")):
            if re.match(r"^[a-z]+:", link) or link.startswith("//"):
                continue
            if not (page.parent / urllib.parse.unquote(link)).exists():
                bad.append(f"{page.relative_to(root)}: broken link {link}")
    return bad


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(root: Path):
    """A local HTTP server of ``root`` on a free port, in a daemon thread."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", default=str(HERE / "_build" / "html"))
    parser.add_argument("--browser", default=None)
    parser.add_argument("--shots", default=str(HERE / "_build" / "screenshots"))
    parser.add_argument("--if-available", action="store_true")
    args = parser.parse_args(argv)

    root = Path(args.html)
    if not (root / "index.html").exists():
        print(f"check_html: no built documentation in {root} (run docs/build.sh)")
        return 1
    links = broken_links(root)
    for e in links:
        print("ERROR", e)
    n_pages = sum(1 for _ in root.rglob("*.html"))
    print(f"check_html: {n_pages} pages, relative links checked, {len(links)} broken")
    if links:
        return 1
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        msg = "check_html: the playwright package is not installed (pip install playwright)"
        print(msg)
        return 0 if args.if_available else 1
    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    server = serve(root)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    errors: list[str] = []
    browser_path = find_browser(args.browser)
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=browser_path, headless=True)
        except Exception as exc:  # no browser: playwright's download missing, none on PATH
            print(f"check_html: cannot start Chromium ({str(exc).splitlines()[0]})")
            server.shutdown()
            return 0 if args.if_available else 1
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        current = {"url": ""}
        page.on(
            "console",
            lambda m: (
                errors.append(
                    f"{current['url']}: console {m.type}: {m.text} ({m.location.get('url', '')})"
                )
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda e: errors.append(f"{current['url']}: uncaught {e}"))
        page.on(
            "requestfailed",
            lambda r: errors.append(f"{current['url']}: request failed {r.url} ({r.failure})"),
        )
        page.on(
            "response",
            lambda r: (
                errors.append(f"{current['url']}: HTTP {r.status} {r.url}")
                if r.status >= 400
                else None
            ),
        )
        for rel in PAGES:
            current["url"] = rel
            page.goto(base + rel, wait_until="networkidle")
            page.wait_for_timeout(300)  # late scripts (search index, theme) settle
            title = page.title()
            name = rel.split("?")[0].replace("/", "_").replace(".html", ".png")
            page.screenshot(path=str(shots / name), full_page=rel != "index.html")
            print(f"ok  {rel:60s} title: {title!r}")
        # the home page above the fold, for a quick look
        page.goto(base + "index.html", wait_until="networkidle")
        page.screenshot(path=str(shots / "home_viewport.png"))
        browser.close()
    server.shutdown()
    for e in errors:
        print("ERROR", e)
    print(f"check_html: {len(PAGES)} pages, {len(errors)} error(s); screenshots in {shots}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
