"""``--engine ray``: scoring and training on a Ray cluster (the optional ``ray`` extra)."""
