"""Tasks (denoising, restoration, colour enhancement, ...) as one object each."""
