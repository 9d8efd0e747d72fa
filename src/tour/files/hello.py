"""The tour's first program: it runs once, in a pod of its own, and ends."""

import platform

print(f"Hello from a pod! Python {platform.python_version()} on {platform.node()}")
