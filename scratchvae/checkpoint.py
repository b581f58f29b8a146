"""Checkpoints: one ``.npz`` holding everything a run needs to go on exactly where it stopped.

Keys (every value a NumPy array; loaded with allow_pickle=False, so a checkpoint can
never run code):

    encoder.1.weight, ...      the model's state_dict, names as in torch (parameters, BatchNorm buffers)
    optimizer.t, optimizer.m.<i>, optimizer.v.<i>
                               Adam's step count and moments, by parameter index
    rng.<name>                 each random generator's state, as a JSON string (rng.train shuffles
                               and binarizes, rng.model draws eps, rng.replica.<k> a worker's eps)
    meta.format                CHECKPOINT_FORMAT
    meta.config                the run's settings (config.json's content) as a JSON string
    meta.epoch                 epochs finished
    meta.best_loss             the best held-out loss so far (inf before the first)
    progress.order, progress.step, progress.totals, progress.seen
                               only when stopped inside an epoch (Ctrl-C): that epoch's shuffled
                               order, the next step, and the loss totals of the steps done

Writes are atomic: a temporary file in the same folder, flushed and fsynced, then renamed
over the old one, so a process killed at any moment leaves the previous checkpoint whole.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import save_npz_atomic
from .distributions import DEFAULT_COMPONENTS
from .errors import UsageError
from .models import ARCHITECTURES, build_model
from .nn.module import Module

CHECKPOINT_FORMAT = 1
_META, _OPTIMIZER, _RNG, _PROGRESS = "meta.", "optimizer.", "rng.", "progress."


class CheckpointError(UsageError):
    """A checkpoint is missing, truncated, foreign or of another architecture (one-line message)."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds, split by kind (see the module docstring)."""

    config: dict
    model_state: dict[str, np.ndarray]
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    rng_states: dict[str, dict] = field(default_factory=dict)
    epoch: int = 0
    best_loss: float = float("inf")
    progress: dict[str, np.ndarray] | None = None
    path: Path | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The flat key -> array dict that goes into the .npz."""
        out = dict(self.model_state)
        out.update({_OPTIMIZER + k: v for k, v in self.optimizer_state.items()})
        out.update({_RNG + k: np.array(json.dumps(v)) for k, v in self.rng_states.items()})
        out.update({_META + "format": np.array(CHECKPOINT_FORMAT), _META + "config": np.array(json.dumps(self.config)),
                    _META + "epoch": np.array(self.epoch), _META + "best_loss": np.array(self.best_loss)})
        out.update({_PROGRESS + k: v for k, v in (self.progress or {}).items()})
        return out


def rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def restore_rng(rng: np.random.Generator, state: dict) -> None:
    """Put a generator back into a saved state (in place: whoever holds it draws on from there)."""
    rng.bit_generator.state = state


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    save_npz_atomic(path, checkpoint.arrays())


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint; CheckpointError names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as err:                  # no permission, an I/O error: the user's file, not a bug
        raise CheckpointError(f"{path}: cannot read it ({err.strerror or err})") from None
    if magic != b"PK\x03\x04":              # every .npz is a zip; anything else is not a checkpoint
        raise CheckpointError(f"{path}: not an .npz file, so not a scratchvae checkpoint")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable .npz checkpoint ({err})") from None
    if _META + "config" not in arrays or _META + "format" not in arrays:
        raise CheckpointError(f"{path}: not a scratchvae checkpoint (no meta.config; a bare state_dict?)")
    if int(arrays[_META + "format"]) != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {int(arrays[_META + 'format'])}, "
                              f"this version reads {CHECKPOINT_FORMAT}")
    try:
        config = json.loads(str(arrays[_META + "config"]))
        rngs = {k[len(_RNG):]: json.loads(str(v)) for k, v in arrays.items() if k.startswith(_RNG)}
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: corrupt JSON in the checkpoint ({err})") from None

    def part(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    progress = part(_PROGRESS) or None
    model_state = {k: v for k, v in arrays.items() if not k.startswith((_META, _OPTIMIZER, _RNG, _PROGRESS))}
    return Checkpoint(config, model_state, part(_OPTIMIZER), rngs, int(arrays[_META + "epoch"]),
                      float(arrays[_META + "best_loss"]), progress, path)


def model_from_config(config: dict, rng: np.random.Generator | None = None) -> Module:
    """The model a run's config describes, freshly initialised."""
    missing = [k for k in ("model", "kind", "latent_dim", "loss", "beta") if k not in config]
    if missing:
        raise CheckpointError(f"config lacks {', '.join(missing)}")
    if config["model"] not in ARCHITECTURES:
        raise CheckpointError(f"unknown model '{config['model']}' in the config")
    image_shape = tuple(config["image_shape"]) if config.get("image_shape") else None
    return build_model(config["model"], config["kind"], config["latent_dim"], config["loss"], config["beta"],
                       rng=rng, image_shape=image_shape, posterior=config.get("posterior", "logvar"),
                       prior=config.get("prior", "normal"),
                       prior_components=config.get("prior_components", DEFAULT_COMPONENTS),
                       objective=config.get("objective", "elbo"), iw_samples=config.get("iw_samples", 1))


def load_model(path: Path) -> tuple[Module, Checkpoint]:
    """Rebuild the model a checkpoint was saved from and load its weights (eval mode)."""
    checkpoint = load_checkpoint(path)
    try:
        model = model_from_config(checkpoint.config)
        model.load_state_dict(checkpoint.model_state)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: weights do not fit the '{checkpoint.config.get('model')}' "
                              f"architecture of its config ({str(err).strip(chr(34))})") from None
    model.eval()
    return model, checkpoint
