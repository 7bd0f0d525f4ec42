"""Models on disk: their config, checkpoints, initial weights, restorers."""
