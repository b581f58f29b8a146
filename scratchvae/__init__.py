"""scratchvae: variational autoencoders in NumPy, every gradient written by hand.

    import scratchvae as sv
    model = sv.build_model("mlp")          # 784-400-20 VAE
    losses = model.loss(x)                 # forward + negative ELBO (recon, kl)
    model.backward()                       # gradients into every Parameter.grad
    sv.Adam(model.parameters()).step()
"""
from . import _threads  # noqa: F401  (must run before NumPy is imported)
from .gradcheck import check_loss, check_model, check_module, gradcheck
from .models import VAE, Autoencoder, Losses, build_model
from .nn import *  # noqa: F401,F403
from .nn import __all__ as _nn_all
from .objective import BCE, MSE, RMSE, BCEWithLogits, GaussianKL, Reparameterize, make_loss
from .optim import SGD, Adam, clip_grad_norm
from .parallel import DataParallel

__version__ = "0.1.0"
__all__ = list(_nn_all) + [
    "Adam", "Autoencoder", "BCE", "BCEWithLogits", "DataParallel", "GaussianKL", "Losses", "MSE", "RMSE",
    "Reparameterize", "SGD", "VAE", "build_model", "check_loss", "check_model", "check_module", "clip_grad_norm",
    "gradcheck", "make_loss",
]
