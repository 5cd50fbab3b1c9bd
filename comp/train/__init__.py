"""Training: the report's models, the input pipeline, the per-epoch callbacks, the hardware
choice, and `train` (one run, with resume). TensorFlow is imported only when training starts."""

from comp.train.loop import train

__all__ = ["train"]
