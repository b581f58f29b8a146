"""An MLP VAE on MNIST with a 2-D latent space: train it, reconstruct, sample, map the latent space.

    python demos/02_mlp_vae.py            # ~2 min on 2 cores
    python demos/02_mlp_vae.py --quick    # seconds, tiny data, 1 epoch

What to look for in the figures (in --out, default runs/demo-02):
    loss.png             train and held-out loss fall together: no overfitting at this size
    reconstructions.png  test digits (odd rows) and their decodes: blurry, since 2 numbers must
                         describe a whole digit, but mostly the right class
    samples.png          decodes of z ~ N(0, I): digit-like images, since the KL term made N(0, I)
                         the place the decoder knows
    scatter.png          the held-out means mu, coloured by digit: clusters per class, packed
                         into a round blob around the origin (the prior's shape)
    manifold.png         the decoded quantile grid: digits morph smoothly into one another, every
                         cell is a digit-like image (compare the plain autoencoder in demo 04)
"""
# %%
import numpy as np

import scratchvae as sv
import scratchvae.latent as lat
from _common import make, parse_args
from scratchvae.data.datasets import load_dataset
from scratchvae.latent.figures import save_manifold, save_scatter
from scratchvae.plots import save_grid, save_loss_curves, save_reconstructions
from scratchvae.train import evaluate, minibatches

args = parse_args(__doc__, "demo-02", epochs=(int, 5, "training epochs"),
                  train_size=(int, 60000, "training images"))
epochs, n_train, n_test = (1, 500, 300) if args.quick else (args.epochs, args.train_size, 10000)

# %% The data: 28x28 grey digits in [0, 1], the held-out ones never trained on
data = load_dataset("mnist", train_size=n_train)
x_train, x_test, y_test = data.train, data.test[:n_test], data.test_labels[:n_test]
print(f"train {x_train.shape}, held out {x_test.shape}")

# %% The model: 784-400-(2+2) encoder, 2-400-784 decoder, Bernoulli (BCE) likelihood
vae = make("mlp", "vae", latent_dim=2, seed=args.seed)

# %% Training: the epoch loop written out (train.fit adds checkpoints, workers and a NaN guard)
optimizer = sv.Adam(vae.parameters(), lr=1e-3)
rng = np.random.default_rng(args.seed)                               # shuffles the batches
history = []
for epoch in range(1, epochs + 1):
    total, seen = 0.0, 0
    for idx in minibatches(len(x_train), 100, rng):                  # a shuffled order, 100 images a batch
        vae.zero_grad()                                              # backward adds into .grad
        losses = vae.loss(x_train[idx])                              # forward and the negative ELBO
        vae.backward(input_grad=False)                               # every Parameter.grad
        optimizer.step()                                             # Adam
        total, seen = total + losses.total * len(idx), seen + len(idx)
    test = evaluate(vae, x_test)                                     # held-out losses, eval mode
    history.append({"epoch": epoch, "train_loss": total / seen, "test_loss": test.total})
    print(f"epoch {epoch}  train {total / seen:.2f}  test {test.total:.2f} "
          f"(recon {test.recon:.2f}, kl {test.kl:.2f})")
vae.eval()
save_loss_curves(history, args.out / "loss.png")

# %% Reconstructions: decode the posterior mean of each held-out image
save_reconstructions(x_test[:20], vae.reconstruct(x_test[:20]), args.out / "reconstructions.png")

# %% Samples: decode draws from the prior N(0, I)
save_grid(vae.sample(100, np.random.default_rng(1)), args.out / "samples.png",
          title="decoded z ~ N(0, I)")

# %% The latent space: where the held-out images go, and what each point decodes to
mu = lat.encode_means(vae, x_test)                                   # (N, 2)
save_scatter(mu, y_test, args.out / "scatter.png", title="MLP VAE: held-out means mu")
codes, q = lat.manifold_codes(vae.latent_dim, 20, vae.prior.quantile)  # (400, 2), (20,)
save_manifold(vae.decode_mean(codes), q, args.out / "manifold.png",
                  title="decodes of a 20 x 20 grid of prior quantiles")
print("wrote", ", ".join(p.name for p in sorted(args.out.glob("*.png"))))
