"""Errors raised while training: a failed ensemble member or a non-finite loss."""

from caloray.errors import CalorayError


class TrainingError(CalorayError, RuntimeError):
    """An ensemble member failed; the message names the member and the cause."""


class NonFiniteLossError(CalorayError, FloatingPointError):
    """A training loss became NaN or infinite; the message names member, epoch and batch index."""
