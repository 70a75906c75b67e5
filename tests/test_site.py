"""The documentation site, in a real browser: headless Chromium, driven by Playwright, over the built site
served on localhost.

Every page loads without a console error, a failed request or a request to another host; every image (the
notebooks' figures included) has loaded with a non-zero size; every section page's framework tabs switch
and show the tab module's own source; the site's search finds ``corr2d`` and ``port``. Screenshots of the
landing page and a section page are written as artefacts (the test prints where).

tox's ``docs`` environment builds the site with ``mkdocs build --strict`` and passes it in ``D2LCONV_SITE``;
without it the test builds the site itself. ``D2LCONV_CHROMIUM`` names another Chromium binary.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from d2lconv import backends

pytest.importorskip("mkdocs", reason="the docs tools are not installed: pip install -e '.[docs]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[docs]'")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("D2LCONV_CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", allow_module_level=True)

SECTION_PAGES = sorted(path.relative_to(ROOT / "docs").as_posix() for path in (ROOT / "docs" / "book").glob("*.md"))

# Every image of the page, made to load now (a lazy one below the fold too), then its decoded size.
IMAGE_SIZES = """async () => {
    const images = Array.from(document.images);
    images.forEach(image => { image.loading = "eager"; });
    await Promise.all(images.map(image => image.decode().catch(() => null)));
    return images.map(image => [image.currentSrc.slice(0, 80), image.naturalWidth, image.naturalHeight]);
}"""


class QuietHandler(SimpleHTTPRequestHandler):
    """A static file server that does not log every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: tox's (``D2LCONV_SITE``), else built here with ``mkdocs build --strict``."""
    if os.environ.get("D2LCONV_SITE"):
        built = Path(os.environ["D2LCONV_SITE"])
        assert (built / "index.html").is_file(), f"D2LCONV_SITE={built} holds no built site"
        return built
    built = tmp_path_factory.mktemp("site")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(built)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return built


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    """The site served on localhost, on a free port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def watched(browser: sync_api.Browser, base_url: str) -> Iterator[tuple[sync_api.Page, list[str]]]:
    """A page and the problems seen while it works: console errors, page errors, failed requests, responses
    of 400 and above, and requests to another host (each one aborted before it leaves the machine)."""
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    local = urlsplit(base_url).netloc

    def seen(problem: str) -> None:
        problems.append(f"{urlsplit(page.url).path}: {problem}")

    def route(request_route: sync_api.Route) -> None:
        url = urlsplit(request_route.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.netloc != local:
            seen(f"request to another host: {request_route.request.url}")
            request_route.abort()
        else:
            request_route.continue_()

    context.route("**/*", route)
    page.on("console", lambda message: message.type == "error" and seen(f"console error: {message.text}"))
    page.on("pageerror", lambda error: seen(f"page error: {error}"))
    page.on("requestfailed", lambda request: seen(f"failed request: {request.url} ({request.failure})"))
    page.on("response", lambda answer: answer.status >= 400 and seen(f"HTTP {answer.status}: {answer.url}"))
    yield page, problems
    context.close()


def image_outputs(notebook: Path) -> int:
    """How many figures a notebook's stored outputs hold."""
    cells = json.loads(notebook.read_text())["cells"]
    return sum(
        1
        for cell in cells
        for output in cell.get("outputs", [])
        if {"image/png", "image/svg+xml", "image/jpeg"} & set(output.get("data", {}))
    )


def source_of(path: Path, name: str) -> str:
    """The source of the top-level function or class ``name`` of ``path``, decorators included."""
    text = path.read_text()
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            return "\n".join(text.splitlines()[first - 1 : node.end_lineno])
    raise AssertionError(f"{path} defines no {name}")


def test_every_page_loads_cleanly_with_its_images(site, base_url, watched):
    page, problems = watched
    pages = sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html") if path.name != "404.html")
    assert {"index.html", "reference.html", "cli.html", "notebooks/conv_layer.html"} <= set(pages)
    for name in pages:
        page.goto(base_url + name, wait_until="networkidle")
        assert page.title(), name
        images = page.evaluate(IMAGE_SIZES)
        problems += [f"/{name}: image not loaded: {src}" for src, width, height in images if not (width and height)]
        notebook = ROOT / "notebooks" / Path(name).with_suffix(".ipynb").name
        if name.startswith("notebooks/"):
            expected = image_outputs(notebook)
            assert expected and len(images) >= expected, f"{name}: {len(images)} images, the notebook has {expected}"
            # its TeX is drawn as MathML by the browser, not left as $...$ for a script from a CDN
            assert "MathJax" not in page.content(), name
            prose = page.locator(".jp-RenderedMarkdown").all_text_contents()
            assert not [text for text in prose if "$" in text], f"{name}: TeX left as text"
    assert not problems, "\n".join(problems)


def test_the_landing_page_shows_the_parity_picture(base_url, watched, tmp_path_factory):
    page, problems = watched
    page.goto(base_url + "index.html", wait_until="networkidle")
    picture = page.locator("img[src$='parity.svg']")
    assert picture.count() == 1
    assert picture.evaluate("image => image.naturalWidth") > 200
    artefacts = Path(os.environ.get("D2LCONV_ARTEFACTS") or tmp_path_factory.mktemp("screenshots"))
    artefacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=artefacts / "landing.png")
    page.goto(base_url + "book/conv_layer.html", wait_until="networkidle")
    page.locator(".tabbed-labels > label", has_text="PyTorch").first.click()
    page.screenshot(path=artefacts / "section-6.2.png", full_page=True)
    print(f"screenshots: {artefacts / 'landing.png'}, {artefacts / 'section-6.2.png'}")
    assert (artefacts / "landing.png").stat().st_size > 10_000
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("section", SECTION_PAGES)
def test_the_framework_tabs_switch_and_show_each_tabs_own_code(section, base_url, watched):
    page, problems = watched
    page.goto(base_url + section.replace(".md", ".html"), wait_until="networkidle")
    tab_sets = page.locator(".tabbed-set")
    assert tab_sets.count() >= 1, f"{section} has no framework tabs"
    for index in range(tab_sets.count()):
        tab_set = tab_sets.nth(index)
        labels = tab_set.locator(".tabbed-labels > label")
        panels = tab_set.locator(".tabbed-content > .tabbed-block")
        assert labels.count() == panels.count() == len(backends.BACKENDS), section
        for tab in range(labels.count()):
            labels.nth(tab).click()
            assert panels.nth(tab).is_visible(), (section, labels.nth(tab).inner_text())
            hidden = [not panels.nth(other).is_visible() for other in range(panels.count()) if other != tab]
            assert all(hidden), (section, labels.nth(tab).inner_text())
            title = panels.nth(tab).locator(".filename").inner_text()  # d2lconv/backends/<tab>/<module>.py
            assert title.split("/")[2] == backends.BACKENDS[tab], (section, title)
            shown = panels.nth(tab).locator("code").inner_text()
            names = [node.name for node in ast.parse(shown).body]
            assert names, (section, title)
            expected = "\n\n\n".join(source_of(ROOT / title, name) for name in names)
            assert shown.strip() == expected.strip(), (section, title)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("query", ["corr2d", "port"])
def test_the_search_finds(query, base_url, watched):
    page, problems = watched
    page.goto(base_url + "index.html", wait_until="networkidle")
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially(query, delay=20)  # typed: the search answers key presses
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=30_000)  # the index loads in a worker; slow on a busy machine
    assert results.count() >= 2
    assert query in results.first.inner_text().lower()
    assert not problems, "\n".join(problems)
