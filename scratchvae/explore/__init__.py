"""A latent-space explorer: one self-contained HTML page, made from a checkpoint, that decodes in
plain JavaScript (``scratchvae explore``; docs/explorer.md).

    export.py     the decoder as JSON layer specs with float32 base64 weights; refuses layers the JS lacks
    content.py    what the page shows: held-out means and logvars, labels, PCA axes, feature vectors, a strip
    page.py       page.html with decoder.js, explorer.js and the data inlined into one file
    decoder.js    the forward pass, a function per NumPy layer (Linear ... ConvTranspose2d as scatter-add)
    explorer.js   the controls: the pad, the sliders, the interpolation strip, the feature sliders
"""
from .export import ExportError, export_decoder
from .page import build_page

__all__ = ["ExportError", "build_page", "export_decoder"]
