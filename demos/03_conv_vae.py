"""A convolutional VAE on MNIST (32-D latent): sharper digits than the MLP's, and a look at the codes.

    python demos/03_conv_vae.py            # ~3 min on 2 cores
    python demos/03_conv_vae.py --quick    # seconds

What to look for (in --out, default runs/demo-03):
    loss.png             the held-out loss, lower than the 2-D MLP's of demo 02 (more latent room)
    reconstructions.png  odd rows test digits, even rows decodes: close copies, strokes kept
    samples.png          decodes of z ~ N(0, I): mostly readable digits, some malformed ones
                         (parts of N(0, I) the encoder never uses: the "holes" of the aggregate
                         posterior)
    scatter.png          PCA of the 32-D means: the top 2 directions hold under a fifth of the
                         variance and the classes overlap there (only the 1s stand apart): a 32-D
                         code spreads what it knows over many directions (compare demo 02's 2-D map)
    histograms.png       each latent dimension's means over the N(0, 1) density: the used
                         dimensions spread roughly like N(0, 1), the unused ones ("posterior
                         collapse", KL ~ 0 there) squeeze into a spike at 0
"""
# %%
import numpy as np

from _common import make, parse_args, train
from scratchvae.data.datasets import load_dataset
from scratchvae.latent import encode_means
from scratchvae.latent.figures import save_histograms, save_scatter
from scratchvae.plots import save_grid, save_loss_curves, save_reconstructions

args = parse_args(__doc__, "demo-03", epochs=(int, 5, "training epochs"),
                  train_size=(int, 60000, "training images"))
epochs, n_train, n_test = (1, 300, 200) if args.quick else (args.epochs, args.train_size, 10000)

# %% The data
data = load_dataset("mnist", train_size=n_train)
x_train, x_test, y_test = data.train, data.test[:n_test], data.test_labels[:n_test]

# %% The model: conv encoder (28 -> 14 -> 7), transposed-conv decoder back up (models/conv.py)
vae = make("conv", "vae", latent_dim=32, seed=args.seed)
print(vae)
history = train(vae, x_train, x_test, epochs, seed=args.seed)
save_loss_curves(history, args.out / "loss.png")

# %% Reconstructions and samples
save_reconstructions(x_test[:20], vae.reconstruct(x_test[:20]), args.out / "reconstructions.png")
save_grid(vae.sample(100, np.random.default_rng(1)), args.out / "samples.png", title="decoded z ~ N(0, I)")

# %% The 32-D codes: a PCA view coloured by digit, and each dimension against the prior
mu = encode_means(vae, x_test)                                       # (N, 32)
save_scatter(mu, y_test, args.out / "scatter.png", title="conv VAE: held-out means mu")
save_histograms(mu, args.out / "histograms.png", title="conv VAE: held-out means mu per dimension")
print("wrote", ", ".join(p.name for p in sorted(args.out.glob("*.png"))))
