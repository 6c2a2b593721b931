"""The one version of the distribution: pyproject reads it, the SDK reports it."""

__version__ = "0.1.0"
