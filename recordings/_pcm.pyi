# recordings/_pcm.c, built by `make install` (setup.py).
from typing_extensions import Buffer

def measure(samples: Buffer, buckets: int, /) -> tuple[int, list[int]]: ...
