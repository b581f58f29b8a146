"""A whole VAE in the browser: train an MLP VAE on MNIST and write one HTML page that runs it.

    python demos/09_explorer.py                    # ~1 min on 2 cores; then open runs/demo-09/explorer.html
    python demos/09_explorer.py --latent-dim 16    # above 2-D: a slider per dimension, a PCA pad
    python demos/09_explorer.py --quick            # seconds, tiny data, 1 epoch

The page (in --out, default runs/demo-09) is one file: the encoder's and decoder's weights, their
forward pass in plain JavaScript (scratchvae/explore/layers.js) and the model's prior, posterior
and likelihood (distributions.js), nothing loaded from elsewhere; open it straight from disk,
offline. `scratchvae explore CHECKPOINT` makes the same page from a checkpoint. What to look
for (docs/explorer.md):
    draw a 3       the page scales and centres it as MNIST's digits were, encodes it, and puts its
                   posterior on the pad: the mean lands among the held-out 3s, inside a one-sigma
                   ellipse far smaller than the cloud (the encoder is sure where it goes)
    new eps        z = mu + sigma eps moves inside the ellipse (the green circle) and the recon term
                   moves with it by a few nats; the KL term stays (it depends on mu and sigma only)
    the nats       recon + KL = -ELBO, and the nll with K = 100 importance samples (a tighter bound,
                   usually a little lower): the numbers `scratchvae evaluate` computes for that image
                   with those eps; the KL bars show which latent dimensions the image spends nats on
    the manifold   switch on the decoded grid behind the pad: each region decodes to the digits
                   whose means sit there, and the grey circles (the prior's 1, 2, 3 sigma) show how
                   little mass the prior puts where the decodes blur
    a thumbnail    encodes a held-out digit the same way; two of them set the ends of the
                   interpolation slider, and a digit's feature slider pulls any code towards its cluster
"""
# %%
from _common import make, parse_args, train
from scratchvae.data.datasets import load_dataset
from scratchvae.explore import build_page

args = parse_args(__doc__, "demo-09", epochs=(int, 5, "training epochs"),
                  train_size=(int, 60000, "training images"), latent_dim=(int, 2, "latent size"))
epochs, n_train, n_test = (1, 500, 300) if args.quick else (args.epochs, args.train_size, 10000)

# %% Train: the model of demo 02 (784-400-(L+L) encoder, L-400-784 decoder, BCE)
data = load_dataset("mnist", train_size=n_train)
x_train, x_test, y_test = data.train, data.test[:n_test], data.test_labels[:n_test]
vae = make("mlp", "vae", latent_dim=args.latent_dim, seed=args.seed)
train(vae, x_train, x_test, epochs, seed=args.seed)

# %% The page: encoder and decoder weights (float32, base64), which prior, posterior and likelihood
# the model has, the held-out means and labels, the PCA axes (L > 2), feature vectors per digit, a
# strip of held-out digits to encode; all inside one file
page = build_page(vae, x_test, y_test, f"mlp vae, L={args.latent_dim}, {epochs} epochs, mnist")
path = args.out / "explorer.html"
path.write_text(page, encoding="utf-8")
print(f"wrote {path} ({len(page.encode('utf-8')) / 1e6:.2f} MB): open it in a browser")
