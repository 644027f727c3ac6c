"""T-VAU: text-guided fine-grained video anomaly understanding."""
__version__ = "0.1.0"
