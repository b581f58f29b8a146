"""A latent-space explorer: one self-contained HTML page, made from a checkpoint, that runs the model in
plain JavaScript (``scratchvae explore``; docs/explorer.md).

    export.py         the encoder and decoder as their layers' page_spec JSON (float32 base64 weights),
                      and which prior, posterior and likelihood the model has; refuses what the page lacks
    content.py        what the page shows: held-out means, labels, PCA axes, feature vectors, a strip
    page.py           page.html with the scripts and the data inlined into one file
    layers.js         the forward pass, a function per NumPy layer (Linear ... Conv2d, ConvTranspose2d)
    distributions.js  the prior, the posterior and the likelihood: log-densities, KL, sampling
    elbo.js           the ELBO of the image at hand and its importance-sampled nll, as evaluation.py
    drawing.js        the drawing canvas and its strokes as an MNIST-style image
    pad.js            the latent pad: means, ellipse, sample z, prior contours, decoded manifold
    explorer.js       the state and the controls
"""
from .export import ExportError, export_model
from .page import build_page

__all__ = ["ExportError", "build_page", "export_model"]
