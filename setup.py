"""Build of the shoal Python package (metadata lives in pyproject.toml).

One build: the Makefile compiles every C file, with its own flags, and this
file only links and packages what it built.

* ``make python-ext PYTHON=<this interpreter>`` compiles the extension's
  sources (python/shoal/_shoal*.c, against this interpreter's headers),
  build/libshoal.a (src/common, src/client) and build/shoal (the daemon and
  CLI);
* the extension ``shoal._shoal`` is linked from those objects and
  build/libshoal.a, so the package needs no separately installed library;
* the ``shoal`` executable is installed as package data in
  ``shoal/_bin/shoal``. The console script ``shoal`` (shoal.__main__) execs
  it, so ``shoal serve``, ``shoal ls`` ... are on the PATH of the
  environment, and connect() finds it next to the package to start a
  daemon.

Plain setuptools, make and a C compiler: no Cython, pybind11 or cffi.
$SHOAL_MAKE_JOBS sets make's -j (default 2).
"""

import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def make(*args):
    """Runs make in the repository with this interpreter as PYTHON and
    returns its standard output."""
    jobs = os.environ.get("SHOAL_MAKE_JOBS", "2")
    cmd = ["make", "-s", "-C", ROOT, f"-j{jobs}", f"PYTHON={sys.executable}", *args]
    try:
        return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    except FileNotFoundError:
        raise SystemExit("shoal: building needs make and a C compiler") from None
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"shoal: `{' '.join(cmd)}` failed with status {e.returncode}") from None


class BuildWithMake(build_ext):
    """build_ext that has make compile everything, links the extension from
    its objects and copies the ``shoal`` executable into the package."""

    def run(self):
        make("python-ext")
        objects = [os.path.join(ROOT, p) for p in make("print-python-ext-objects").split()]
        for ext in self.extensions:
            ext.extra_objects = objects
            ext.depends = objects  # relink when make rebuilt any of them
        super().run()
        self.copy_daemon()

    def copy_daemon(self):
        built = os.path.join(ROOT, "build", "shoal")
        targets = [os.path.join(self.build_lib, "shoal", "_bin", "shoal")]
        if self.inplace:
            targets.append(os.path.join(ROOT, "python", "shoal", "_bin", "shoal"))
        for target in targets:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(built, target)
            os.chmod(target, 0o755)


setup(
    package_dir={"": "python"},
    packages=["shoal", "shoal.brain"],
    package_data={"shoal": ["py.typed", "*.pyi"]},
    exclude_package_data={"shoal": ["*.c", "*.h"]},
    # No sources: make compiled them (BuildWithMake sets the objects).
    ext_modules=[Extension("shoal._shoal", sources=[], libraries=["pthread"])],
    cmdclass={"build_ext": BuildWithMake},
    options={"build": {"build_base": "build/python"}},
)
