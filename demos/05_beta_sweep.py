"""The beta sweep: one MLP VAE per beta in  recon + beta * KL,  judged on held-out digits.

    python demos/05_beta_sweep.py            # ~2 min on 2 cores (6 models)
    python demos/05_beta_sweep.py --quick    # seconds (2 models)

beta weighs the KL term, the "rate": how many nats the code carries about the image. Small beta
buys sharp reconstructions with a high rate; large beta squeezes the code towards the prior.
What to look for (in --out, default runs/demo-05):
    rate-distortion.png  held-out KL (x) against held-out recon (y), one point per beta: as beta
                         grows the points walk up and to the left, lower rate for higher
                         distortion; no beta wins both (the trade-off of Alemi et al. 2018)
    beta-samples.png     decoded z ~ N(0, I), one row per beta: small beta gives varied but
                         broken, noisy digits (the prior is a poor fit to the codes), beta 1-4
                         the cleanest strokes, beta 8 blurry, alike "average" digits
    beta-recons.png      the same held-out digits decoded by each model: detail lost as beta grows
"""
# %%
import numpy as np

from _common import make, parse_args, train
from scratchvae.data.datasets import load_dataset
from scratchvae.latent import BetaResult, save_beta_samples, save_rate_distortion
from scratchvae.latent.figures import save_strip
from scratchvae.train import evaluate

args = parse_args(__doc__, "demo-05", epochs=(int, 4, "training epochs per beta"),
                  train_size=(int, 20000, "training images"), latent=(int, 10, "latent dimensions"))
betas = [0.5, 4.0] if args.quick else [0.1, 0.5, 1.0, 2.0, 4.0, 8.0]
epochs, n_train, n_test = (1, 300, 200) if args.quick else (args.epochs, args.train_size, 2000)

# %% The data
data = load_dataset("mnist", train_size=n_train)
x_train, x_test = data.train, data.test[:n_test]

# %% One model per beta, all from the same initial weights
results, recons = [], []
for beta in betas:
    vae = make("mlp", "vae", latent_dim=args.latent, seed=args.seed, beta=beta)
    train(vae, x_train, x_test, epochs, seed=args.seed, label=f"beta={beta:g}")
    test = evaluate(vae, x_test)                   # Losses(total, recon, kl) per held-out image
    samples = vae.sample(10, np.random.default_rng(1))   # the same prior draws for every beta
    results.append(BetaResult(beta, test.recon, test.kl, samples))
    recons.append(vae.reconstruct(x_test[:10]))
    print(f"beta={beta:g}: held-out recon {test.recon:.1f}, KL {test.kl:.1f} nats")

# %% Rate against distortion, and what each beta's samples and reconstructions look like
save_rate_distortion(results, args.out / "rate-distortion.png",
                     title=f"beta-VAE on MNIST ({args.latent}-D latent), held-out images")
save_beta_samples(results, args.out / "beta-samples.png")
save_strip(np.stack([x_test[:10]] + recons), [""] * 10, args.out / "beta-recons.png",
           title="held-out digits (top) and their decodes, one row per beta",
           row_labels=["data"] + [f"beta={b:g}" for b in betas])
print("wrote", ", ".join(p.name for p in sorted(args.out.glob("*.png"))))
