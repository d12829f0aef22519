"""Models: resolving a name to weights, loading them, and applying a fine-tuning method."""
