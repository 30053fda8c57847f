"""Every data set behind one call each, with integrity checks.

``from imgclf import data`` gives the whole public surface; the package is split by job:

* :mod:`.integrity`: checksums, downloads, and the two errors every loader raises;
* :mod:`.datasets`: MNIST, the faces, densitograms, Linnaeus 5 / flowers, image folders, MURA;
* :mod:`.images`: image decoding, checked reading, the decoded-image cache;
* :mod:`.transforms`: noise and subsets;
* :mod:`.duplicates`: near-duplicate groups and group-aware splits.

Files are looked up under the data directory (:func:`imgclf.config.data_dir`); a missing file is
fetched from its public source where one exists (``keras.utils.get_file``) and otherwise reported
with one :class:`DataFileMissingError` that names the file, its checksum and the directory where it
belongs. A truncated, corrupted or swapped file raises :class:`DataIntegrityError` and is never used.
"""

from __future__ import annotations

from . import datasets, duplicates, images, integrity, transforms  # noqa: F401
from .datasets import *  # noqa: F401,F403
from .duplicates import *  # noqa: F401,F403
from .images import *  # noqa: F401,F403
from .integrity import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403
