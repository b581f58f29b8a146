"""The VAE objective: reconstruction losses and the negative ELBO made of the model's parts
(the prior, the posterior and their KL live in scratchvae/distributions)."""
from ..distributions import DiagonalGaussian, GaussianKL, MonteCarloKL, StandardNormal
from .elbo import ELBO
from .losses import BCE, LOSSES, MSE, RMSE, BCEWithLogits, ReconstructionLoss, make_loss
from .terms import Losses

#: the sampling layer z = mu + exp(logvar / 2) * eps under its textbook name
Reparameterize = DiagonalGaussian

__all__ = ["BCE", "BCEWithLogits", "DiagonalGaussian", "ELBO", "GaussianKL", "LOSSES", "Losses", "MSE",
           "MonteCarloKL", "RMSE", "ReconstructionLoss", "Reparameterize", "StandardNormal", "make_loss"]
