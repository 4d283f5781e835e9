"""Image tools of the storage app that need no Django: the built-in images (builtin.py).

Like compute/drivers/, nothing here imports Django; callers pass paths (settings.VAR_DIR/…).
"""
