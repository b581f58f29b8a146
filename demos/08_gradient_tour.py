"""A tour of VAE.backward: every step of the chain rule, its formula, its shapes, its check.

    python demos/08_gradient_tour.py            # well under a second
    python demos/08_gradient_tour.py --quick    # the same (the tour is already tiny)

The same as `scratchvae tour --model mlp` and `--model conv`. On a tiny float64 VAE and a batch
of 3 images with eps held fixed, the backward pass is run one call at a time, from the loss down
to the input, exactly as VAE.backward runs it. Each step shows the gradient formula with its id
in docs/derivations, the shapes of what arrives (dout) and of what leaves (dx, dweight, ...), and
the relative error of each against central finite differences of that step alone. The last line
checks that the unrolled chain gives model.backward()'s gradients.

What to look for (also written to --out, default runs/demo-08, as tour-mlp.txt and tour-conv.txt):
    every rel. err ~1e-8 or below   each step's backward is the derivative of its own forward
    the shapes                      dout always has the shape of the step's output, dx that of its input
    concat -> dh                    the one place two gradients (reparameterize's and beta * KL's) add
    the last line                   the tour IS the model's backward: the same gradients, bit for bit
"""
# %%
from _common import parse_args
from scratchvae.tour import format_tour, run_tour

args = parse_args(__doc__, "demo-08")   # --quick changes nothing: the tour is already tiny

# %% The MLP VAE: Flatten, Linear, ReLU, Linear -> (mu, logvar) -> z -> Linear, ReLU, Linear, Reshape
tours = {"mlp": run_tour("mlp", args.seed)}
print(format_tour(tours["mlp"]))

# %% The conv VAE: the same chain through Conv2d (im2col) and ConvTranspose2d (its adjoint)
tours["conv"] = run_tour("conv", args.seed)
print(format_tour(tours["conv"]))

# %% Write both tours as text
for name, tour in tours.items():
    (args.out / f"tour-{name}.txt").write_text(format_tour(tour) + "\n")
print("wrote", ", ".join(f"tour-{name}.txt" for name in tours))
if not all(t.ok for t in tours.values()):
    raise SystemExit("a check failed: see the lines marked 'above tolerance' or the summaries")
