"""The VAE objective: reparameterization, the analytic KL, reconstruction losses."""
from .kl import GaussianKL
from .losses import BCE, LOSSES, MSE, RMSE, BCEWithLogits, ReconstructionLoss, make_loss
from .reparameterize import Reparameterize

__all__ = ["BCE", "BCEWithLogits", "GaussianKL", "LOSSES", "MSE", "RMSE", "ReconstructionLoss",
           "Reparameterize", "make_loss"]
