"""Put the page together: page.html with the scripts and the data inlined.

One file and nothing else: the page's Content-Security-Policy (default-src 'none') keeps the
browser from loading anything, even by mistake, so it works offline and from a file:// URL.
The data is JSON inside <script type="application/json">, with every "</" written "<\\/" (the
same string to JSON) so no value can close the script element early.
"""
from __future__ import annotations

import html
import json
from importlib.resources import files

from ..nn.module import Module
from .content import page_content
from .export import export_model

# in the order they run: each uses only what the ones before it define
SCRIPTS = ("layers.js", "distributions.js", "elbo.js", "drawing.js", "pad.js", "explorer.js")


def _template(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def build_page(model: Module, x, labels, about: str, n_scatter: int = 1000) -> str:
    """The explorer's HTML for a model (eval mode) and its held-out images x (N, C, H, W) and labels."""
    exported = export_model(model)                               # refuses a model the page cannot run, first
    data = {"about": about, "model": exported, **page_content(model, x, labels, n_scatter)}
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    title = html.escape(f"scratchvae latent explorer: {about}")
    scripts = "\n".join(f"<script>\n{_template(name)}</script>" for name in SCRIPTS)
    page = _template("page.html").replace("__TITLE__", title).replace("__SCRIPTS__", scripts)
    return page.replace("__DATA__", text, 1)                    # last: the data is never searched for a placeholder
