"""The GPU beyond array operations: a generator that lives on the device (random.py)."""
