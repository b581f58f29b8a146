"""The problems with the plain autoencoder: the same MLP, the same 2-D latent, with and without KL.

    python demos/04_ae_vs_vae.py            # ~3 min on 2 cores
    python demos/04_ae_vs_vae.py --quick    # seconds

Both models get the same encoder/decoder, the same initial weights and the same data; the VAE
adds the KL term (and the noise of z = mu + sigma eps), the autoencoder (AE) has neither.
What to look for (in --out, default runs/demo-04):
    ae-vs-vae.png        top row AE, bottom row VAE.
                         left: the codes. The AE's spread over a box far larger than N(0, I)
                         (red circle, radius 2), in thin arms with empty gaps between them; the
                         VAE's fill a round blob around the origin.
                         middle: decodes of points uniform over each box. The AE's gaps decode
                         to smudges that are no digit; the VAE's box is mostly covered.
                         right: decodes of z ~ N(0, I). For the AE these all come from a small
                         patch of its latent space (the same few, often malformed, digits); the
                         VAE gives a varied set of digits: it is a generative model, the AE is not.
    reconstructions.png  held-out digits, AE decodes, VAE decodes: the AE reconstructs at least
                         as well (it need not pay for KL); its problem is sampling, not recall.
"""
# %%
import numpy as np

from _common import make, parse_args, train
from scratchvae.data.datasets import load_dataset
from scratchvae.latent import save_ae_vs_vae
from scratchvae.plots import save_grid

args = parse_args(__doc__, "demo-04", epochs=(int, 5, "training epochs per model"),
                  train_size=(int, 60000, "training images"))
epochs, n_train, n_test = (1, 500, 300) if args.quick else (args.epochs, args.train_size, 10000)

# %% The data
data = load_dataset("mnist", train_size=n_train)
x_train, x_test, y_test = data.train, data.test[:n_test], data.test_labels[:n_test]

# %% Two models, identical but for the KL term
ae = make("mlp", "ae", latent_dim=2, seed=args.seed)
vae = make("mlp", "vae", latent_dim=2, seed=args.seed)
train(ae, x_train, x_test, epochs, seed=args.seed, label="AE ")
train(vae, x_train, x_test, epochs, seed=args.seed, label="VAE")

# %% The comparison: codes, decodes of the codes' bounding box, decodes of the prior
save_ae_vs_vae(ae, vae, x_test, y_test, args.out / "ae-vs-vae.png", n=100, rng=np.random.default_rng(1))

# %% Recall is not the problem: both reconstruct held-out digits
x = x_test[:10]
save_grid(np.concatenate([x, ae.reconstruct(x), vae.reconstruct(x)]), args.out / "reconstructions.png",
          title="held out / AE / VAE")
print("wrote", ", ".join(p.name for p in sorted(args.out.glob("*.png"))))
