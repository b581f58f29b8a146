"""Datasets: bundled (MNIST, Olivetti faces), downloaded (Fashion-MNIST), or any array file or image
folder, through ``load_dataset``; and how batches are drawn from them."""
from .arrays import load_array_file
from .datasets import Dataset, check_model_fits, held_out_images, held_out_split, load_dataset, prepare
from .download import cache_dir, fetch_fashion_mnist, load_fashion_mnist
from .folder import load_image_folder
from .idx import DataFileError, read_idx
from .mnist import BINARIZE_MODES, Split, binarize, load_split, static_test_binarization
from .olivetti import Faces, load_faces
from .resize import resize_square

__all__ = ["BINARIZE_MODES", "DataFileError", "Dataset", "Faces", "Split", "binarize", "cache_dir",
           "check_model_fits", "fetch_fashion_mnist", "held_out_images", "held_out_split", "prepare", "load_array_file", "load_dataset",
           "load_faces", "load_fashion_mnist", "load_image_folder", "load_split", "read_idx", "resize_square",
           "static_test_binarization"]
