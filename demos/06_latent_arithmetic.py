"""Latent arithmetic on MNIST: walk between codes, morph one digit into another, add a feature.

    python demos/06_latent_arithmetic.py            # ~2 min on 2 cores
    python demos/06_latent_arithmetic.py --quick    # seconds

An MLP VAE with a 16-D latent space; every code below is a posterior mean mu of a held-out image.
What to look for (in --out, default runs/demo-06):
    interpolation.png  a held-out 1 -> 7 by lerp (top) and slerp (bottom): the 1 tilts and
                       grows the 7's bar step by step; the middle frames are fainter (the path
                       crosses codes few images use); slerp and lerp look alike at 16-D here
    morphs.png         one row per chosen pair (0 -> 6, 3 -> 8, 4 -> 9, 2 -> 5): 0 -> 6 and
                       4 -> 9 change smoothly, stroke by stroke; between less alike digits
                       (3 -> 8, 2 -> 5) the middle frames are smudged blends of both
    feature-digit.png  z + alpha v with v = mean mu of the 8s - mean mu of the rest, on four
                       held-out digits: to the right they pick up 8-like loops, to the left lose them
    feature-ink.png    the "ink" vector (above-median mean intensity vs below): strokes thicken
                       to the right, thin to the left; past alpha ~ 1 the digit itself turns
                       into a bulky 0 or 8 (in MNIST, ink is tangled with the class)
    feature-slant.png  the "slant" vector (mu11/mu02 above the median: leaning right): the
                       digits tilt from upright towards '/' as alpha grows
"""
# %%
import numpy as np

import scratchvae.latent as lat
from _common import make, parse_args, train
from scratchvae.data.datasets import load_dataset
from scratchvae.latent.features import in_batches
from scratchvae.latent.figures import save_strip

args = parse_args(__doc__, "demo-06", epochs=(int, 5, "training epochs"),
                  train_size=(int, 60000, "training images"))
epochs, n_train, n_test = (1, 500, 300) if args.quick else (args.epochs, args.train_size, 10000)

# %% Train
data = load_dataset("mnist", train_size=n_train)
x_train, x_test, y_test = data.train, data.test[:n_test], data.test_labels[:n_test]
vae = make("mlp", "vae", latent_dim=16, seed=args.seed)
train(vae, x_train, x_test, epochs, seed=args.seed)
mu = lat.encode_means(vae, x_test)                                   # (N, 16)


def first(digit: int) -> int:
    """The index of the first held-out image of a digit."""
    return int(np.flatnonzero(y_test == digit)[0])


# %% Interpolation: lerp and slerp between the codes of a 1 and a 7
steps = 10
a, b = mu[first(1)], mu[first(7)]
paths = [lat.interpolation_path(a, b, steps), lat.interpolation_path(a, b, steps, spherical=True)]
save_strip(np.stack([vae.decode_mean(p) for p in paths]), [f"{t:.2f}" for t in np.linspace(0, 1, steps)],
           args.out / "interpolation.png", title="1 -> 7: alpha from 0 to 1", row_labels=["lerp", "slerp"])

# %% Morphing between chosen test images: the ends are the decodes of the two real images
pairs = [(0, 6), (3, 8), (4, 9), (2, 5)]
rows = [vae.decode_mean(lat.interpolation_path(mu[first(p)], mu[first(q)], steps)) for p, q in pairs]
save_strip(np.stack(rows), [f"{t:.2f}" for t in np.linspace(0, 1, steps)], args.out / "morphs.png",
           title="morphs between held-out digits", row_labels=[f"{p} -> {q}" for p, q in pairs])

# %% Feature vectors: v = mean mu with the feature - mean mu without, then decode z + alpha v
alphas = np.linspace(-2, 2, 9)
show = np.array([first(d) for d in (1, 3, 5, 7)])                    # four held-out digits to shift
features = {"digit": ("is an 8", y_test == 8),
            "ink": ("more ink", lat.split_at_median(lat.ink(x_test))),
            "slant": ("leans right", lat.split_at_median(lat.slant(x_test)))}
for name, (what, has) in features.items():
    est = lat.estimate_feature_vector(in_batches(lambda x: lat.encode_means(vae, x), x_test, has, 200),
                                      tolerance=0)                   # 0: use every held-out image
    shifted = lat.shift_codes(mu[show], est.vector, alphas)          # (4, A, 16)
    images = vae.decode_mean(shifted.reshape(-1, vae.latent_dim))
    save_strip(images.reshape(len(show), len(alphas), *images.shape[1:]), [f"{a:+.1f}" for a in alphas],
               args.out / f"feature-{name}.png", title=f"z + alpha v, v = '{what}' ({est.n_with} with, "
               f"{est.n_without} without, |v| = {np.linalg.norm(est.vector):.2f})")
print("wrote", ", ".join(p.name for p in sorted(args.out.glob("*.png"))))
