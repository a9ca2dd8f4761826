"""medvec: an embedded multimodal vector store for clinics, in a notebook.

Vectors go in and come out as numpy arrays; payload as pandas, Arrow or plain dicts. Every call
runs the same library code as the ``medvec`` command line, with the GIL released, so the numbers
are the CLI's and Python threads search in parallel.

>>> import numpy as np, medvec, tempfile
>>> store = medvec.open(tempfile.mkdtemp() + "/clinic")
>>> cases = store.create_collection("cases", vectors={"image": (4, "cosine")}, payload={"dx": str})
>>> cases.upsert(["a", "b"], vectors={"image": np.eye(4)[:2]}, payload={"dx": ["nv", "mel"]})
>>> ids, scores = cases.search("image", np.array([1.0, 0.1, 0, 0]), k=1)
>>> ids.tolist()
[['a']]
"""

from __future__ import annotations

from ._collection import Collection, Head
from ._errors import CorruptFile, Error, InvalidInput, LockedError, StoreError
from ._medvec import is_verbose, set_verbose
from ._results import SearchResult
from ._store import Store, open, search_shards

__all__ = [
    "open",
    "Store",
    "Collection",
    "Head",
    "SearchResult",
    "search_shards",
    "set_verbose",
    "is_verbose",
    "Error",
    "StoreError",
    "CorruptFile",
    "LockedError",
    "InvalidInput",
]
__version__ = "0.1.0"
