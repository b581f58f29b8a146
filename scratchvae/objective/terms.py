"""What an objective returns: its total and the terms it names, each a per-image average over the batch."""
from __future__ import annotations

import math
from typing import Iterable, Iterator, Sequence


class Losses:
    """An objective's value on a batch: ``total`` and its named terms (per-image averages).

        Losses(recon + beta * kl, recon=recon, kl=kl)      the ELBO's (objective/elbo.py)
        losses.total, losses.recon, losses.kl              read by name
        losses.names == ("total", "recon", "kl")          what the training log and metrics carry
        np.array(losses)                                   the values in that order

    An objective with other terms names them here, and the training loop, the metrics rows
    and the checkpoint carry them without a change.
    """

    __slots__ = ("total", "terms")

    def __init__(self, total: float, **terms: float) -> None:
        self.total = total
        self.terms = terms

    @classmethod
    def from_values(cls, names: Sequence[str], values: Iterable[float]) -> "Losses":
        """The inverse of (names, iter): values in the order of names, "total" first."""
        total, *rest = values
        return cls(total, **dict(zip(names[1:], rest)))

    @classmethod
    def weighted(cls, parts: list[tuple[float, "Losses"]]) -> "Losses":
        """sum_k w_k * losses_k, term by term (a batch's losses from the losses of its shares)."""
        names, values = parts[0][1].names, [list(losses) for _, losses in parts]
        return cls.from_values(names, [float(sum(w * v[i] for (w, _), v in zip(parts, values)))
                                       for i in range(len(names))])

    @property
    def names(self) -> tuple[str, ...]:
        return ("total", *self.terms)

    def __getattr__(self, name: str) -> float:
        try:
            return self.terms[name]
        except KeyError:
            raise AttributeError(f"these losses have no term {name!r} (they have {', '.join(self.names)})") from None

    def __iter__(self) -> Iterator[float]:
        yield self.total
        yield from self.terms.values()

    def __getitem__(self, i: int) -> float:
        return list(self)[i]

    def __len__(self) -> int:
        return 1 + len(self.terms)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Losses) and self.as_dict() == other.as_dict()

    def as_dict(self) -> dict[str, float]:
        return {"total": self.total, **self.terms}

    def finite(self) -> bool:
        """No NaN or infinity among them (the training loop's NaN guard)."""
        return all(math.isfinite(v) for v in self)

    def __repr__(self) -> str:
        return "Losses(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"
