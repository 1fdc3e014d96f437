"""Project-wide error types: each names the file, line or config key that caused it."""


class AllmrecError(Exception):
    """Base class for errors the pipelines raise on bad input or bad configuration."""


class ConfigError(AllmrecError):
    """A parameter or catalog entry is missing, unknown or out of range."""


class DataError(AllmrecError):
    """Input data violates a contract (schema, too many bad lines, leakage...)."""
