"""Only the C extension lives here; everything else about the package is in pyproject.toml.

recordings/_pcm.c is the ingest's one-pass loudness and peaks (the file says why it is C).
An editable install (`make install`) builds it next to its source.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("recordings._pcm", sources=["recordings/_pcm.c"], extra_compile_args=["-Wextra"])
    ]
)
