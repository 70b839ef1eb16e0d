"""Errors caloray raises for bad input; each message names the file, key and problem."""

import re


class CalorayError(Exception):
    """Base class of caloray's own errors."""


class GeometryError(CalorayError, ValueError):
    """A geometry definition or binning XML is inconsistent, or a geometry name is unknown."""


class ShowerFileError(CalorayError, ValueError):
    """A shower file is missing, corrupt or does not match its geometry."""


class ConfigError(CalorayError, ValueError):
    """A configuration file has unknown keys or invalid values."""


#: Where Ray only kept the worker's traceback text (a Ray Data UDF error wrapped in UserCodeException, an actor
#: that died in its constructor), the error survives as its last line "caloray.errors.<Type>: <message>".
_REMOTE_LINE = re.compile(r"^caloray\.errors\.(\w+): (.+)$", re.MULTILINE)
#: Ray Data appends its retry advice to the message of an error raised in a map task.
_RAY_TRAILERS = ("\nFailed to apply UDF transform", "\nFailed to apply ")


def user_error(exc: BaseException) -> CalorayError | None:
    """The caloray error behind `exc`, else None: the innermost one of its chain, also one raised in a Ray
    task/actor/Ray Data stage (the first that names the file, e.g. a `ShowerFileError` under a `GenerationError`).

    Ray wraps a remote error as `RayTaskError(<Type>)` whose `cause` is the original (or Ray Data's
    `UserCodeException`, whose text holds the worker's traceback); both are searched, without importing Ray.
    """
    found: CalorayError | None = None
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        cause = getattr(error, "cause", None)  # Ray's RayTaskError / RayActorError: the remote exception
        if isinstance(cause, BaseException):
            error = cause
            continue
        if isinstance(error, CalorayError):
            found = error
        # `raise X from None` (e.g. a config error re-raised with the file's name) ends the chain there
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if found is not None:
        return found
    matches = _REMOTE_LINE.findall(str(exc))
    if matches and isinstance(kind := globals().get(matches[-1][0]), type) and issubclass(kind, CalorayError):
        return kind(matches[-1][1])
    return None


def is_resumable(error: CalorayError) -> bool:
    """Whether `error` reports a failure behind it (an actor crash, a lost node: raised `from` a non-caloray
    exception) rather than bad input; the finished work of such a run is kept for a rerun to resume."""
    return error.__cause__ is not None and not isinstance(error.__cause__, CalorayError)


def one_line(error: BaseException) -> str:
    """The message of `error` on one line (Ray's appended advice dropped, other line breaks joined)."""
    text = str(error)
    for trailer in _RAY_TRAILERS:
        text = text.split(trailer, 1)[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
