"""The ``shoal`` console script: execs the shoal executable shipped with the
package, so ``shoal serve``, ``shoal ls`` ... run the C binary itself (same
pid, same signals, same exit status)."""

import os
import sys

from shoal._daemon import find_binary


def main():
    binary = find_binary(use_path=False)
    if binary is None:
        sys.stderr.write(
            "shoal: the shoal executable is not installed next to the package; "
            "reinstall shoal or set $SHOAL_BIN\n"
        )
        return 1
    os.execv(binary, ["shoal"] + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
