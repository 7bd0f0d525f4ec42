"""Measuring restorers: the evaluation protocol shared by every job."""
