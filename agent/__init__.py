"""hotspare: hardware-level redundancy monitor."""

__version__ = "0.1.0"
