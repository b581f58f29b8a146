"""Bundled datasets (MNIST, Olivetti faces) and how batches are drawn from them."""
from .idx import DataFileError, read_idx
from .mnist import BINARIZE_MODES, Split, binarize, load_split, static_test_binarization
from .olivetti import Faces, load_faces

__all__ = ["BINARIZE_MODES", "DataFileError", "Faces", "Split", "binarize", "load_faces", "load_split",
           "read_idx", "static_test_binarization"]
