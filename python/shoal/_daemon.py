"""Finding the ``shoal`` executable (daemon + CLI).

Looked for, in order: ``$SHOAL_BIN``; ``shoal/_bin/shoal`` next to this
package (where ``pip install`` puts it); ``build/shoal`` of a source tree
this package is imported from (development); ``shoal`` on the PATH.
"""

import os
import shutil

_HERE = os.path.dirname(os.path.abspath(__file__))


def _executable(path):
    return path if path and os.path.isfile(path) and os.access(path, os.X_OK) else None


def find_binary(use_path=True):
    """Path of the shoal executable, or None. With use_path=False the PATH is
    not searched (the console script must not find itself)."""
    env = os.environ.get("SHOAL_BIN")
    if env:
        # A relative path is taken from where the caller runs, not from
        # where the detached daemon starts.
        if os.sep in env:
            return os.path.abspath(env)
        return shutil.which(env) or env
    for candidate in (
        os.path.join(_HERE, "_bin", "shoal"),
        os.path.join(_HERE, "..", "..", "build", "shoal"),
    ):
        found = _executable(candidate)
        if found:
            return os.path.abspath(found)
    if use_path:
        return shutil.which("shoal")
    return None
