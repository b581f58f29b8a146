"""One VAE training step, written out, with every shape printed and every gradient checked.

    python demos/01_one_step_by_hand.py            # seconds; --quick is the same run
    python demos/01_one_step_by_hand.py --out DIR  # also writes DIR/gradcheck.txt

Walks the forward pass (encoder -> mu, logvar -> z -> decoder -> loss), then the
backward pass in reverse, the way the ELBO's backward does it (objective/elbo.py), compares the
analytic gradients with float64 finite differences, and ends with the step itself: the four
lines of every training step and Adam's update of one weight, checked against its formula by hand.
"""
# %%
import numpy as np

from _common import parse_args
import scratchvae as sv
from scratchvae.data import load_split

args = parse_args(__doc__, "demo-01")  # one step is already CI-sized: --quick changes nothing
sv.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
model = sv.build_model("mlp", latent_dim=2).to(np.float64)
x = load_split("test").images[:4].astype(np.float64)                # (4, 1, 28, 28)
L = model.latent_dim

# %% The forward pass
print("forward")
h = model.encoder.forward(x)                                         # (4, 2L)
mu, logvar = model.posterior.params(h, L)                            # (4, L) each: h[:, :L], h[:, L:]
eps = rng.standard_normal(mu.shape)                                  # (4, L)
z = model.posterior.forward(mu, logvar, eps)                         # (4, L): mu + exp(logvar / 2) * eps
logits = model.decoder.forward(z)                                    # (4, 1, 28, 28)
recon = model.recon_loss.forward(logits, x)
kl = model.kl.forward(mu, logvar)
print(f"  x {x.shape} -> h {h.shape} -> z {z.shape} -> logits {logits.shape}")
print(f"  recon {recon:.2f} nats/image, kl {kl:.2f} nats/image, loss {recon + kl:.2f}")

# %% The backward pass, in reverse, as the ELBO's backward does it
print("backward")
model.zero_grad()
dlogits = model.recon_loss.backward()                                # (sigmoid(logits) - x) / N
dz = model.decoder.backward(dlogits)                                 # (4, L)
dmu, dlogvar = model.posterior.backward(dz)                          # dmu = dz, dlogvar = dz*eps*std/2
dmu_kl, dlogvar_kl = model.kl.backward()                             # mu/N, (exp(logvar)-1)/(2N)
dh = model.posterior.params_backward(dmu + dmu_kl, dlogvar + dlogvar_kl)  # (4, 2L): concat, beta = 1
dx = model.encoder.backward(dh)                                      # (4, 1, 28, 28)
for name, p in model.named_parameters():
    print(f"  {name:<18} shape {str(p.shape):<12} |grad| {np.linalg.norm(p.grad):.4f}")

# %% Every gradient against finite differences
print("finite differences (float64, central, eps held fixed)")
report = sv.check_model(model, x[:2], eps=eps[:2], max_entries=50, h=1e-4)  # 50 random entries per array
print(report)
(args.out / "gradcheck.txt").write_text(str(report) + "\n")

# %% The step: zero the gradients, loss, backward, update; then one weight's update by hand
opt = sv.Adam(model.parameters(), lr=1e-3)
model.zero_grad()                                                    # backward adds into .grad
model.loss(x, eps=eps)                                               # the same forward as above
model.backward(input_grad=False)                                     # the same gradients as above
w = model.encoder[1].weight                                          # the first Linear's weight (400, 784)
i = tuple(int(k) for k in np.unravel_index(np.argmax(np.abs(w.grad)), w.shape))  # its largest gradient
before, g = w.data[i], w.grad[i]
opt.step()                                                           # Adam's first step (t = 1)
m = (1 - opt.beta1) * g                                              # m = beta1 * 0 + (1 - beta1) g   [ADAM-2]
v = (1 - opt.beta2) * g * g                                          # v = beta2 * 0 + (1 - beta2) g^2
m_hat, v_hat = m / (1 - opt.beta1), v / (1 - opt.beta2)              # bias-corrected   [ADAM-3]
by_hand = before - opt.lr * m_hat / (np.sqrt(v_hat) + opt.eps)       # p - lr m_hat / (sqrt(v_hat) + eps)
print(f"Adam step on encoder.1.weight{list(i)}: grad {g:+.6f}, {before:+.8f} -> {w.data[i]:+.8f} "
      f"(by hand {by_hand:+.8f})")
# the fused kernel folds the bias corrections into two scalars [ADAM-4]: the same number up to rounding
assert abs(w.data[i] - by_hand) <= 1e-12 * abs(before) + 1e-15, "Adam's update differs from its formula"
