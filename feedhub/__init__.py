"""feedhub: publish a folder of Jekyll posts as feeds, and aggregate upstream feeds into it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("feedhub")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
