"""The package version, in a module of its own: plans record it, and reading it must not import the
whole package from inside one of its modules."""

__version__ = "0.1.0"
