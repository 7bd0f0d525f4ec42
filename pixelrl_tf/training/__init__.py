"""Training machinery: the loop, its triggers, validation and run settings."""
