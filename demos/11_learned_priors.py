"""Learned priors: the same MLP VAE with p(z) = N(0, I), a mixture of Gaussians and a VampPrior.

    python demos/11_learned_priors.py            # 5-12 min on 2 busy cores here (3 models, 10 epochs each)
    python demos/11_learned_priors.py --quick    # well under a minute: tiny data, 2 epochs

Three MLP VAEs (784-400-20, Bernoulli likelihood) train on binarized MNIST with the same initial
encoder and decoder, the same batches and the same eps; only the prior differs (--prior
normal|mog|vamp of `scratchvae train`): N(0, I), a mixture of M learned diagonal Gaussians, and
the VampPrior, the mixture of the encoder's posteriors on M learned pseudo-inputs
u = sigmoid(a) (scratchvae/distributions/, docs/derivations/vamp.md). Each is evaluated on the
same held-out images with the importance-sampled nll (K small: a rough number, docs/evaluation.md).

What to look for (printed, and figures in --out, default runs/demo-11):
    the nll table        the learned priors end below N(0, I), paired image by image (measured here
                         with the defaults: mog -1.1 +- 0.2, vamp -2.8 +- 0.2 nats): the prior is part
                         of the model, and one that fits where the encoder puts its codes explains more
    pseudo-inputs.png    the VampPrior's M pseudo-inputs u (top) still look like the grey noise they
                         started as: Adam moves each logit by at most about lr per step (~1 in all
                         here), while the initial logits are N(0, 1); what training changed, u - u0
                         (middle), is digit strokes; and each component of the prior, decoded at its
                         mean (bottom), is a clean digit, every class among them. Every pixel of u is
                         in [0, 1] by construction (the zoo's vamp-unbounded is what happens without)
    samples.png          decoded draws from each model's own prior, side by side: N(0, I) and the
                         mixture of Gaussians draw many blurry in-between shapes (regions no posterior
                         uses); the VampPrior's draws, near the posteriors of its pseudo-inputs, are
                         mostly clean digits
"""
# %%
import numpy as np

from _common import make, parse_args, train
from scratchvae.data.datasets import load_dataset, prepare
from scratchvae.distributions import prior_label
from scratchvae.evaluation import importance_sampled_nll
from scratchvae.plots import save_mosaics


def stderr(v: np.ndarray) -> float:
    return float(v.std() / np.sqrt(len(v)))


args = parse_args(__doc__, "demo-11", epochs=(int, 10, "training epochs per model"),
                  train_size=(int, 10000, "training images"), components=(int, 50, "M, the priors' components"),
                  k=(int, 100, "importance samples per held-out image for the nll"))
epochs, n_train, n_test, k, m = (2, 1000, 200, 10, 20) if args.quick else \
    (args.epochs, args.train_size, 1000, args.k, args.components)

# %% The data: binarized once (static), so the nll is a likelihood of binary images
data = load_dataset("mnist", train_size=n_train)
x_train, x_test = prepare(data, "static", np.random.default_rng(args.seed))
x_test = x_test[:n_test]
print(f"train {x_train.shape}, held out {x_test.shape}")

# %% Three models, one prior each: the same seed gives the same encoder and decoder weights
models = {}
for prior in ("normal", "mog", "vamp"):
    models[prior] = make("mlp", "vae", latent_dim=20, seed=args.seed, prior=prior, prior_components=m)
    if prior == "vamp":
        u0 = models[prior].prior.pseudo_inputs().copy()             # (M, 1, 28, 28): random grey to start
    train(models[prior], x_train, x_test, epochs, seed=args.seed, label=f"--prior {prior}:")

# %% The held-out nll of each, on the same images and draws (K = k importance samples per image)
print(f"\nheld-out nll, K = {k}, {n_test} images (nats per image, lower is better; the gap to N(0, I) is paired,\n"
      "image by image, so its standard error is far smaller than each nll's)")
nll = {prior: importance_sampled_nll(model, x_test, k, rng=np.random.default_rng([args.seed, 2]), progress=False)
       for prior, model in models.items()}                           # (N,) each
for prior, model in models.items():
    gap = nll[prior] - nll["normal"]                                 # (N,)
    print(f"  {prior:<7} {prior_label(model.prior):<28} {nll[prior].mean():7.2f} +- {stderr(nll[prior]):.2f}" +
          (f"   vs N(0, I) {gap.mean():+6.2f} +- {stderr(gap):.2f}" if prior != "normal" else ""))

# %% The VampPrior's pseudo-inputs u, what training changed in them (u - u0, scaled to the grey range) and
# what the decoder makes of each one's component: the mean of q(z | u_m), decoded
vamp = models["vamp"]
u = vamp.prior.pseudo_inputs()                                       # (M, 1, 28, 28)
change = u - u0                                                      # (M, 1, 28, 28)
scale = np.abs(change).max()
vamp.refresh_prior()
save_mosaics([("pseudo-inputs u = sigmoid(a)", u),
              (f"u - u0, what training changed (grey 0, white +{scale:.2g}, black -{scale:.2g})",
               0.5 + 0.5 * change / scale),
              ("decoded component means: decoder(mean of q(z | u_m))", vamp.decode_mean(vamp.prior.components.means))],
             args.out / "pseudo-inputs.png", ncols=10, stacked=True)

# %% Samples from each model's own prior, side by side
rng = np.random.default_rng(1)
save_mosaics([(f"{prior}: decoded z ~ {prior_label(model.prior)}", model.sample(36, rng))
              for prior, model in models.items()], args.out / "samples.png")
print("wrote", ", ".join(p.name for p in sorted(args.out.glob("*.png"))))
