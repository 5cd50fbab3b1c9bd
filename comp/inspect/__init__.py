"""`comp inspect`: what a run sees, and clues to what the classes are: an HTML report of
average images, saliency maps, confident errors, distributions, learning curves and image
statistics."""

from comp.inspect.pipeline import inspect

__all__ = ["inspect"]
