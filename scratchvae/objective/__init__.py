"""The VAE objective: reconstruction losses and the negative ELBO made of the model's parts
(the prior, the posterior and their KL live in scratchvae/distributions)."""
from ..distributions import DiagonalGaussian, GaussianKL, MonteCarloKL, StandardNormal
from .elbo import ELBO
from .iwae import IWAE
from .losses import BCE, LOSSES, MSE, RMSE, BCEWithLogits, ReconstructionLoss, make_loss
from .terms import Losses

#: --objective name -> the objective's class
OBJECTIVES = {"elbo": ELBO, "iwae": IWAE}


def make_objective(name: str, iw_samples: int = 1) -> ELBO | IWAE:
    """The objective called ``name``: 'elbo' (one z per image) or 'iwae' (iw_samples z per image)."""
    if name == "elbo":
        if iw_samples != 1:
            raise ValueError(f"the ELBO draws one sample per image; iw_samples={iw_samples} needs objective 'iwae'")
        return ELBO()
    if name == "iwae":
        return IWAE(iw_samples)
    raise ValueError(f"unknown objective '{name}', choose from {', '.join(OBJECTIVES)}")


#: the sampling layer z = mu + exp(logvar / 2) * eps under its textbook name
Reparameterize = DiagonalGaussian

__all__ = ["BCE", "BCEWithLogits", "DiagonalGaussian", "ELBO", "GaussianKL", "IWAE", "LOSSES", "Losses", "MSE",
           "MonteCarloKL", "OBJECTIVES", "RMSE", "ReconstructionLoss", "Reparameterize", "StandardNormal", "make_loss",
           "make_objective"]
