"""A conv VAE on the Olivetti faces (40 people x 10 photos, 64x64 grey; the 10th photo of each held out).

    python demos/07_faces.py                # ~5 min on 2 cores
    python demos/07_faces.py --quick        # seconds
    python demos/07_faces.py --model mlp    # the MLP instead of the faces conv net

Only 360 training photos: the model learns an average face and the main ways faces vary (pose,
lighting, glasses, beard), not identities in detail. What to look for (in --out, default runs/demo-07):
    loss.png             train and held-out loss fall together and flatten early: with 360
                         photos and a KL of ~20 nats the model underfits rather than memorises
    samples.png          decodes of z ~ N(0, I): new, smooth, blurry faces, none a copy of a person
    reconstructions.png  the 40 held-out photos (odd rows) and their decodes: very blurry; the
                         face's position, lighting and darker regions kept, detail (eyes, glasses) lost
    morph.png            person A's held-out photo -> person B's (two pairs), by slerp: the face
                         turns and changes lighting gradually, every frame a face
    feature-person.png   z + alpha v, v = mean mu of person 0's photos - mean mu of everyone else:
                         other people's faces drift towards person 0 as alpha grows (here mostly
                         a lighter, smoother face: what the blurry model sees of person 0)
    feature-bright.png   v from the brighter half against the darker half: the faces light up
                         to the right and darken to the left
"""
# %%
import numpy as np

import scratchvae.latent as lat
from _common import make, parse_args, train
from scratchvae.data.datasets import load_dataset
from scratchvae.latent.figures import save_strip
from scratchvae.plots import save_grid, save_loss_curves, save_reconstructions

args = parse_args(__doc__, "demo-07", epochs=(int, 40, "training epochs"), model=(str, "faces", "faces or mlp"),
                  latent=(int, 32, "latent dimensions"))
# --quick: 15 steps, the fewest after which BatchNorm's running statistics have left their start
# far enough for eval-mode decodes to differ from one z to the next (2 steps gave one grey image)
epochs = 3 if args.quick else args.epochs

# %% The data: 360 training photos, 40 held out (one per person)
data = load_dataset("olivetti", train_size=100 if args.quick else None)
x_train, x_test, y_train, y_test = data.train, data.test, data.train_labels, data.test_labels
print(f"train {x_train.shape}, held out {x_test.shape}, {len(np.unique(y_test))} people")

# %% Train
vae = make(args.model, "vae", latent_dim=args.latent, seed=args.seed, image_shape=data.image_shape)
history = train(vae, x_train, x_test, epochs, batch_size=20 if args.quick else 32, seed=args.seed)
save_loss_curves(history, args.out / "loss.png")

# %% Generate new faces, reconstruct the held-out ones
save_grid(vae.sample(32, np.random.default_rng(1)), args.out / "samples.png", ncols=8, title="decoded z ~ N(0, I)")
save_reconstructions(x_test, vae.reconstruct(x_test), args.out / "reconstructions.png", ncols=10)

# %% Morph one person into another: slerp between the means of two held-out photos
mu_test = lat.encode_means(vae, x_test)                              # (40, L), row i is person y_test[i]
steps = 8
pairs = [(0, 1), (5, 20)]                                            # (person A, person B)
rows = [vae.decode_mean(lat.interpolation_path(mu_test[a], mu_test[b], steps, spherical=True)) for a, b in pairs]
save_strip(np.stack(rows), [f"{t:.2f}" for t in np.linspace(0, 1, steps)], args.out / "morph.png",
           title="one person into another (slerp)", row_labels=[f"{a} -> {b}" for a, b in pairs])

# %% Feature vectors from the training photos: one person against the rest, bright against dark
mu_train = lat.encode_means(vae, x_train)                            # (360, L)
alphas = np.linspace(-1.5, 1.5, 7)
others = np.flatnonzero(y_test != 0)[:4]                             # four other people's held-out photos
groups = {"person": ("person 0 vs the rest", y_train == 0),
          "bright": ("brighter half vs darker", lat.split_at_median(lat.ink(x_train)))}
for name, (what, has) in groups.items():
    v = mu_train[has].mean(axis=0) - mu_train[~has].mean(axis=0)     # (L,)
    shifted = lat.shift_codes(mu_test[others], v, alphas)            # (4, A, L)
    images = vae.decode_mean(shifted.reshape(-1, vae.latent_dim))
    save_strip(images.reshape(len(others), len(alphas), *images.shape[1:]), [f"{a:+.1f}" for a in alphas],
               args.out / f"feature-{name}.png", title=f"z + alpha v, v: {what}",
               row_labels=[f"person {p}" for p in y_test[others]])
print("wrote", ", ".join(p.name for p in sorted(args.out.glob("*.png"))))
