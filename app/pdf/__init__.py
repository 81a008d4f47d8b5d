"""PDF rendering with WeasyPrint: A4, Japanese, fonts and stylesheets loaded once per process.

WeasyPrint (not xhtml2pdf, the design card's first choice) because it keeps IVS variation
sequences, writes 𠮷 (outside the BMP) correctly into the text layer and breaks Japanese lines
with kinsoku (shared/notes/stack-findings.md). Names use IPAmj明朝 for MJ+ characters; body text
IPAexゴシック/明朝 (Debian fonts-ipamj-mincho, fonts-ipaexfont).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

BASE_CSS = """
@page { size: A4; margin: 15mm 14mm 16mm 14mm;
        @bottom-right { content: counter(page) " / " counter(pages); font: 8pt "IPAexGothic"; color: #555; } }
html { font-family: "IPAexGothic", sans-serif; font-size: 10pt; line-height: 1.45; color: #111; }
.mincho { font-family: "IPAexMincho", serif; }
.name, .mj { font-family: "IPAmjMincho", "IPAexMincho", serif; }
h1, h2, h3 { margin: 0; font-weight: bold; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 0.6pt solid #333; padding: 2.5pt 4pt; vertical-align: top; text-align: left; }
th { background: #eee; font-weight: bold; }
.nobreak { break-inside: avoid; }
"""


class PdfRenderer:
    """One per process: WeasyPrint's font configuration and the base stylesheet are reused.

    Documents may embed ``data:`` URLs only (signatures, charts). Tenant administrators write form
    templates, and WeasyPrint would otherwise fetch any URL a page names — ``file:`` (a server file
    as an image, a stylesheet or a PDF attachment: ``<link rel=attachment>``) and ``http:`` (the
    cloud's metadata endpoint, internal services). A refused URL is skipped like a broken image.
    """

    def __init__(self) -> None:
        self.fonts = FontConfiguration()
        self.fetcher = URLFetcher(allowed_protocols=("data",), allow_redirects=False)
        self.base = CSS(string=BASE_CSS, font_config=self.fonts, url_fetcher=self.fetcher)
        self._lock = threading.Lock()

    def _sheets(self, extra_css: str | None) -> list[CSS]:
        sheets = [self.base]
        if extra_css:
            sheets.append(CSS(string=extra_css, font_config=self.fonts, url_fetcher=self.fetcher))
        return sheets

    def _html(self, html: str) -> HTML:
        return HTML(string=html, url_fetcher=self.fetcher)

    def render(self, html: str, extra_css: str | None = None) -> bytes:
        sheets = self._sheets(extra_css)
        with self._lock:  # FontConfiguration is not meant to be shared across threads at once
            return self._html(html).write_pdf(stylesheets=sheets, font_config=self.fonts)  # type: ignore[no-any-return]

    def render_many(self, htmls: list[str], extra_css: str | None = None) -> bytes:
        """Several documents as one PDF (each keeps its own page numbering and layout)."""
        sheets = self._sheets(extra_css)
        with self._lock:
            documents = [self._html(h).render(stylesheets=sheets, font_config=self.fonts) for h in htmls]
            pages = [page for document in documents for page in document.pages]
            return documents[0].copy(pages).write_pdf()  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def renderer() -> PdfRenderer:
    return PdfRenderer()


@lru_cache(maxsize=8)
def templates(directory: str) -> Environment:
    """A Jinja environment per template folder, built once (autoescaped, undefined names are errors)."""
    return Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template_html(directory: Path, name: str, **context: Any) -> str:
    return templates(str(directory)).get_template(name).render(**context)


def render_template_pdf(directory: Path, name: str, **context: Any) -> bytes:
    return renderer().render(render_template_html(directory, name, **context))


class PageImageError(RuntimeError):
    """pdftoppm could not rasterise the PDF."""


def page_images(pdf: bytes, *, dpi: int = 60, first: int = 1, last: int | None = None) -> list[bytes]:
    """PNG images of the PDF's pages (poppler's pdftoppm): thumbnails and the signer's view.

    Rasterising in a subprocess keeps a malformed PDF from taking the worker down with it.
    """
    with tempfile.TemporaryDirectory(prefix="madoguchi-pages-") as work:
        source = Path(work) / "in.pdf"
        source.write_bytes(pdf)
        args = ["pdftoppm", "-png", "-r", str(dpi), "-f", str(first)]
        if last is not None:
            args += ["-l", str(last)]
        try:
            subprocess.run(  # noqa: S603 - fixed program, arguments we built
                [*args, str(source), str(Path(work) / "page")], check=True, capture_output=True, timeout=60
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise PageImageError(str(exc)) from exc
        return [p.read_bytes() for p in sorted(Path(work).glob("page-*.png"))]
