"""The latent space of a trained model: projections, grids, interpolations, feature vectors, figures.

    projection.py   encode_means (mu of a VAE, z of an autoencoder), encode_posteriors (mu and logvar), PCA by SVD
    grid.py         the standard-normal quantile function and the manifold grid of a 2-D latent
    interpolate.py  lerp and slerp between two codes
    features.py     attribute vectors v = mean mu with a feature - mean mu without, and z + alpha v
    figures.py      the PNGs (scatter, manifold, histograms, strips)
    compare.py      figures across models: AE vs VAE, the beta sweep's rate and distortion
"""
from .compare import BetaResult, bounding_box, box_samples, save_ae_vs_vae, save_beta_samples, save_rate_distortion
from .features import (FeatureEstimate, estimate_feature_vector, ink, labels_from_file, shift_codes, slant,
                       split_at_median)
from .grid import manifold_codes, normal_ppf, quantile_grid
from .interpolate import interpolation_path, lerp, slerp
from .projection import PCA, encode_means, encode_posteriors, pca

__all__ = ["BetaResult", "bounding_box", "box_samples", "save_ae_vs_vae", "save_beta_samples",
           "save_rate_distortion", "PCA", "FeatureEstimate", "encode_means", "encode_posteriors", "estimate_feature_vector", "ink", "interpolation_path",
           "labels_from_file", "lerp", "manifold_codes", "normal_ppf", "pca", "quantile_grid", "shift_codes",
           "slant", "slerp", "split_at_median"]
