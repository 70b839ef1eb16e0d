"""Errors caloray raises for bad input; each message names the file, key and problem."""


class CalorayError(Exception):
    """Base class of caloray's own errors."""


class GeometryError(CalorayError, ValueError):
    """A geometry definition or binning XML is inconsistent, or a geometry name is unknown."""


class ShowerFileError(CalorayError, ValueError):
    """A shower file is missing, corrupt or does not match its geometry."""


class ConfigError(CalorayError, ValueError):
    """A configuration file has unknown keys or invalid values."""
