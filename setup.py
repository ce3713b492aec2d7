"""Build of the shoal Python package (metadata lives in pyproject.toml).

Two C artefacts come out of the same sources the Makefile builds:

* the extension ``shoal._shoal``: python/shoal/_shoal*.c plus libshoal
  (src/common/*.c, src/client/*.c) compiled into one shared object, so the
  package needs no separately installed library;
* the ``shoal`` executable (daemon + CLI: src/cli, src/daemon, src/common,
  src/client), installed as package data in ``shoal/_bin/shoal``. The
  console script ``shoal`` (shoal.__main__) execs it, so ``shoal serve``,
  ``shoal ls`` ... are on the PATH of the environment, and connect() finds
  it next to the package to start a daemon.

Plain setuptools and the C compiler Python was built with: no Cython,
pybind11 or cffi. Objects go to build/python/ so they never mix with the
Makefile's build/ variants.
"""

import glob
import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def sources(pattern):
    """Sorted source paths relative to the repository root."""
    return sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern))
    )


COMMON = sources("src/common/*.c")
CLIENT = sources("src/client/*.c")
DAEMON = sources("src/daemon/*.c")
CLI = sources("src/cli/*.c")
EXTENSION = sources("python/shoal/_shoal*.c")

INCLUDES = ["include", "src/common", "src/client"]
CFLAGS = [
    "-std=gnu11",
    "-D_GNU_SOURCE",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
    "-Wno-cast-function-type",
    "-fvisibility=hidden",
]


class BuildWithDaemon(build_ext):
    """build_ext that also links the ``shoal`` executable into the package."""

    def run(self):
        super().run()
        self.build_daemon()

    def build_daemon(self):
        if not (DAEMON and CLI):
            raise SystemExit(
                "shoal: src/daemon or src/cli has no sources; cannot build "
                "the shoal executable"
            )
        objects = self.compiler.compile(
            CLI + DAEMON + COMMON + CLIENT,
            output_dir=os.path.join(self.build_temp, "daemon"),
            include_dirs=INCLUDES + ["src/daemon"],
            # Keep the daemon's cheap invariant checks, as `make` does.
            extra_preargs=CFLAGS + ["-UNDEBUG"],
            depends=glob.glob("include/*.h") + glob.glob("src/*/*.h"),
        )
        bindir = os.path.join(self.build_temp, "bin")
        self.compiler.link_executable(
            objects, "shoal", output_dir=bindir, libraries=["pthread"]
        )
        built = os.path.join(bindir, "shoal")
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
    ext_modules=[
        Extension(
            "shoal._shoal",
            sources=EXTENSION + COMMON + CLIENT,
            include_dirs=INCLUDES,
            extra_compile_args=CFLAGS,
            libraries=["pthread"],
            depends=glob.glob("python/shoal/*.h")
            + glob.glob("include/*.h")
            + glob.glob("src/common/*.h")
            + glob.glob("src/client/*.h"),
        )
    ],
    cmdclass={"build_ext": BuildWithDaemon},
    options={"build": {"build_base": "build/python"}},
)
