"""The logic of each command-line job (`X.py` mains at the package root)."""
