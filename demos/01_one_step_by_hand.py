"""One VAE training step, written out, with every shape printed and every gradient checked.

    python demos/01_one_step_by_hand.py            # seconds; --quick is the same run
    python demos/01_one_step_by_hand.py --out DIR  # also writes DIR/gradcheck.txt

Walks the forward pass (encoder -> mu, logvar -> z -> decoder -> loss), then the
backward pass in reverse, the way VAE.backward does it, and finally compares the
analytic gradients with float64 finite differences.
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
mu, logvar = h[:, :L], h[:, L:]                                      # (4, L) each
eps = rng.standard_normal(mu.shape)                                  # (4, L)
z = model.posterior.forward(mu, logvar, eps)                           # (4, L)
logits = model.decoder.forward(z)                                    # (4, 1, 28, 28)
recon = model.recon_loss.forward(logits, x)
kl = model.kl.forward(mu, logvar)
print(f"  x {x.shape} -> h {h.shape} -> z {z.shape} -> logits {logits.shape}")
print(f"  recon {recon:.2f} nats/image, kl {kl:.2f} nats/image, loss {recon + kl:.2f}")

# %% The backward pass, in reverse, as VAE.backward does it
print("backward")
model.zero_grad()
dlogits = model.recon_loss.backward()                                # (sigmoid(logits) - x) / N
dz = model.decoder.backward(dlogits)                                 # (4, L)
dmu, dlogvar = model.posterior.backward(dz)                            # dmu = dz, dlogvar = dz*eps*std/2
dmu_kl, dlogvar_kl = model.kl.backward()                             # mu/N, (exp(logvar)-1)/(2N)
dh = np.concatenate([dmu + dmu_kl, dlogvar + dlogvar_kl], axis=1)    # (4, 2L)
dx = model.encoder.backward(dh)                                      # (4, 1, 28, 28)
for name, p in model.named_parameters():
    print(f"  {name:<18} shape {str(p.shape):<12} |grad| {np.linalg.norm(p.grad):.4f}")

# %% Every gradient against finite differences
print("finite differences (float64, central, eps held fixed)")
report = sv.check_model(model, x[:2], eps=eps[:2], max_entries=50, h=1e-4)  # 50 random entries per array
print(report)
(args.out / "gradcheck.txt").write_text(str(report) + "\n")
