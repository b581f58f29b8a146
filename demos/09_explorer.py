"""A latent-space explorer in the browser: train an MLP VAE on MNIST and write one HTML page that decodes it.

    python demos/09_explorer.py                    # ~1 min on 2 cores; then open runs/demo-09/explorer.html
    python demos/09_explorer.py --latent-dim 16    # above 2-D: a slider per dimension, a PCA pad
    python demos/09_explorer.py --quick            # seconds, tiny data, 1 epoch

The page (in --out, default runs/demo-09) is one file: the decoder's weights and its forward pass
in plain JavaScript (scratchvae/explore/decoder.js), nothing loaded from elsewhere; open it
straight from disk, offline. `scratchvae explore CHECKPOINT` makes the same page from a
checkpoint. What to look for (docs/explorer.md):
    the pad        the held-out means mu coloured by digit; move the pointer over it and the decoded
                   image follows: within a cluster the digit changes style, between clusters it
                   morphs into the neighbour (the decoder is smooth, every point decodes to a digit)
    the edges      outside the cloud (|z| > 3) the decodes blur and repeat the nearest digits
                   (the prior puts little mass there, so the decoder was rarely asked)
    the ellipse    a picked image's posterior: mean and one-sigma ellipse, small against the
                   cloud (the encoder is sure where each digit goes) and tilted in no direction (a
                   diagonal Gaussian, axis-aligned in a 2-D latent)
    alpha          the slider between two picked digits: the stroke bends from one to the other
    labels         a digit's feature slider pulls any code towards that digit's cluster
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

# %% The page: decoder weights (float32, base64), the held-out means, logvars and labels, the
# PCA axes (L > 2), feature vectors per digit, a strip of held-out digits; all inside one file
page = build_page(vae, x_test, y_test, f"mlp vae, L={args.latent_dim}, {epochs} epochs, mnist")
path = args.out / "explorer.html"
path.write_text(page, encoding="utf-8")
print(f"wrote {path} ({len(page.encode('utf-8')) / 1e6:.2f} MB): open it in a browser")
