"""``medvec.open`` and the store handle."""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence, Tuple, Union

import numpy as np

from . import _medvec
from ._collection import Collection
from ._results import SearchResult

VectorSpec = Union[int, Tuple[int, str], Tuple[int, str, str]]
PayloadSpec = Union[type, str]

_PAYLOAD_TYPES = {str: "string", int: "int", float: "float", bool: "bool"}


def open(path: Union[str, os.PathLike], read_only: bool = False, bulk: bool = False) -> "Store":
    """Opens the store at ``path``, creating it when it does not exist (unless ``read_only``).

    One writer at a time holds a store; any number of read-only handles (in this or other
    processes, the CLI's too) read it meanwhile and see the writer's commits when they reopen.

    ``bulk=True`` opens it for a load, as ``medvec import`` does: larger flushes, and no HNSW
    graph is built until ``flush()`` or ``close()``, which builds one over all the rows loaded
    (readers meanwhile search those rows exactly). Far cheaper than a graph per flush for
    millions of rows.

    >>> import medvec, tempfile
    >>> store = medvec.open(tempfile.mkdtemp() + "/clinic")
    >>> store.collections()
    []
    """
    if read_only and bulk:
        raise _medvec_invalid("open: bulk=True loads rows, so it cannot be read_only")
    return Store(_medvec.open_store(os.fspath(path), read_only, bulk))


def _vector_spec(name: str, spec: VectorSpec) -> str:
    if isinstance(spec, (int, np.integer)):
        return f"{name}:{int(spec)}:cosine"
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        return ":".join([name, str(int(spec[0])), *map(str, spec[1:])])
    raise _medvec_invalid(f"vectors[{name!r}]: expected DIM, (DIM, METRIC) or (DIM, METRIC, \"sq8\"), got {spec!r}")


def _payload_spec(name: str, spec: PayloadSpec) -> str:
    type_name = _PAYLOAD_TYPES.get(spec, spec) if isinstance(spec, type) else spec
    if not isinstance(type_name, str):
        raise _medvec_invalid(f"payload[{name!r}]: expected str, int, float or bool, got {spec!r}")
    return f"{name}:{type_name}"


def _medvec_invalid(message: str) -> Exception:
    from ._errors import InvalidInput

    return InvalidInput(message)


class Store:
    """An open store: a folder of collections. Use as a context manager to close it."""

    def __init__(self, native: Any):
        self._native = native

    @property
    def path(self) -> str:
        return os.fspath(self._native.path)

    @property
    def read_only(self) -> bool:
        return self._native.read_only

    @property
    def closed(self) -> bool:
        return self._native.closed

    def create_collection(
        self,
        name: str,
        vectors: Mapping[str, VectorSpec],
        payload: Mapping[str, PayloadSpec] | None = None,
        *,
        m: int | None = None,
        ef_construction: int | None = None,
        ef_search: int | None = None,
    ) -> Collection:
        """Creates a collection, as ``medvec create`` does.

        ``vectors`` maps each vector field to its dimension, or to ``(dimension, metric)`` with
        metric ``"cosine"`` (the default), ``"l2"`` or ``"dot"``, or to ``(dimension, metric,
        "sq8")`` for one-byte codes that graph walks read (scores stay exact). ``payload`` maps each payload
        field to ``str``, ``int``, ``float`` or ``bool``.

        >>> import medvec, tempfile
        >>> store = medvec.open(tempfile.mkdtemp() + "/clinic")
        >>> cases = store.create_collection(
        ...     "ham10000", vectors={"image": (512, "cosine"), "text": 384},
        ...     payload={"dx": str, "age": int})
        >>> cases.schema["vectors"][0]["dim"]
        512
        """
        specs = [_vector_spec(n, s) for n, s in vectors.items()]
        fields = [_payload_spec(n, s) for n, s in (payload or {}).items()]
        native = self._native.create_collection(name, specs, fields, m, ef_construction, ef_search)
        return Collection(native, self)

    def collection(self, name: str) -> Collection:
        """The collection ``name`` (``StoreError`` when there is none)."""
        return Collection(self._native.collection(name), self)

    def __getitem__(self, name: str) -> Collection:
        return self.collection(name)

    def collections(self) -> list[str]:
        """The names of the collections."""
        return self._native.list_collections()

    def drop_collection(self, name: str) -> None:
        """Deletes a collection and its files (``medvec drop``)."""
        self._native.drop_collection(name)

    def stats(self) -> list[dict]:
        """Each collection's counts, as ``medvec stats --json`` lists them."""
        return self._native.stats()

    def verify(self) -> dict:
        """Checks every file's checksum (``medvec verify``); raises ``CorruptFile`` if one fails."""
        return self._native.verify()

    def flush(self) -> None:
        """Writes every collection's buffered records to segments."""
        self._native.flush()

    def close(self) -> None:
        """Flushes (a writer), releases the store's lock; later calls raise ``StoreError``."""
        self._native.close()

    def ingest(
        self,
        collection: str,
        manifest: Union[str, os.PathLike, None] = None,
        root: Union[str, os.PathLike, None] = None,
        *,
        image_model: Union[str, os.PathLike],
        text_model: Union[str, os.PathLike, None] = None,
        template: str | None = None,
        dicomdir: Union[str, os.PathLike, None] = None,
        progress: Union[bool, Callable[[int, int, int, int, int], Any]] = True,
        **options: Any,
    ) -> dict:
        """Encodes an image archive with ONNX models and stores the vectors (``medvec ingest``);
        the collection is created when missing. Re-running resumes (stored ids are skipped).

        The archive is a ``manifest`` (CSV or JSONL: id, path and metadata columns) of files
        under ``root``, every image file under ``root`` (DICOM found by content), or the files a
        ``dicomdir`` lists. ``text_model`` with ``template`` (a preset such as ``"ham10000"`` or
        text like ``"Age: {age}"``) adds text vectors. Other options, named as the CLI's flags:
        ``image_model_file``, ``text_model_file``, ``image_output``, ``image_pooling``,
        ``text_output``, ``text_pooling``, ``id_column``, ``image_column``, ``image_field``,
        ``text_field``, ``batch``, ``threads``, ``rejects``, ``jpeg_draft``, ``window``,
        ``frames``, ``dicom_tags``, ``allow_identifying_tags``, ``dry_run``.

        ``progress`` shows a tqdm bar when tqdm is installed (``True``), nothing (``False``), or
        calls a function with ``(rows, total, ingested, skipped, rejected)``. Returns what
        ``medvec ingest --json`` prints: ``ingested``, ``skipped``, ``rejected``, ``status``
        (``"complete"`` or ``"partial"``) and ``rejects_file`` (CSV id,path,reason,detail).

        ONNX Runtime is loaded from ``ORT_DYLIB_PATH``, or else from the installed
        ``onnxruntime`` wheel.
        """
        args = _ingest_args(manifest, root, image_model, text_model, template, dicomdir, options)
        _point_at_onnxruntime()
        callback, close = _progress(progress, collection)
        try:
            return _medvec.ingest(self._native, collection, args, callback)
        finally:
            close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "writer"
        return f"medvec.Store({self.path!r}, {mode})"


_INGEST_DEFAULTS: dict[str, Any] = {
    "image_model_file": None,
    "image_output": None,
    "image_pooling": None,
    "text_model_file": None,
    "text_output": None,
    "text_pooling": None,
    "id_column": "id",
    "image_column": "path",
    "image_field": "image",
    "text_field": "text",
    "batch": 64,
    "threads": None,
    "rejects": None,
    "jpeg_draft": False,
    "window": None,
    "frames": None,
    "dicom_tags": [],
    "allow_identifying_tags": False,
    "dry_run": False,
}


def _ingest_args(manifest, root, image_model, text_model, template, dicomdir, options) -> dict:
    unknown = sorted(set(options) - set(_INGEST_DEFAULTS))
    if unknown:
        raise _medvec_invalid(f"ingest: unknown option {unknown[0]!r}; options are {', '.join(sorted(_INGEST_DEFAULTS))}")
    path = lambda p: None if p is None else os.fspath(p)  # noqa: E731
    args = dict(_INGEST_DEFAULTS, **options)
    if args["window"] is not None and not isinstance(args["window"], str):
        centre, width = args["window"]
        args["window"] = f"{centre},{width}"
    for key in ("image_model_file", "text_model_file", "rejects"):
        args[key] = path(args[key])
    args["dicom_tags"] = list(args["dicom_tags"])
    args.update(
        manifest=path(manifest),
        root=path(root),
        dicomdir=path(dicomdir),
        image_model=path(image_model),
        text_model=path(text_model),
        template=template,
    )
    return args


def _point_at_onnxruntime() -> None:
    """Sets ORT_DYLIB_PATH to the onnxruntime wheel's library when it is not set, so that an
    ingest works in any environment that has `pip install onnxruntime`."""
    if os.environ.get("ORT_DYLIB_PATH"):
        return
    import glob
    import importlib.util

    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return
    for folder in spec.submodule_search_locations:
        libraries = sorted(glob.glob(os.path.join(folder, "capi", "libonnxruntime.so*")))
        if libraries:
            os.environ["ORT_DYLIB_PATH"] = libraries[-1]
            return


def _progress(progress, collection: str):
    """The progress callback for the native ingest, and what to call when it ends."""
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return None, lambda: None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None, lambda: None
    bar = tqdm(desc=f"ingest {collection}", unit="rows")

    def update(rows, total, ingested, skipped, rejected):
        bar.total = total
        bar.n = rows
        bar.set_postfix(stored=ingested, skipped=skipped, rejected=rejected, refresh=False)
        bar.refresh()

    return update, bar.close


def search_shards(
    shards: Sequence[Collection],
    field: str,
    queries: np.ndarray,
    k: int = 10,
    filter: str | None = None,
    ef: int | None = None,
    exact: bool = False,
) -> SearchResult:
    """Searches one collection split over several stores (shards) and merges the top-k.

    Each shard returns its own top-k and the merge keeps the k best of their union, best first
    and ties by id: with ``exact=True`` the hits equal an exact search of one collection holding
    every shard's rows. The same as ``medvec search STORE COLL --store B --store C``.

    >>> import medvec, numpy as np, tempfile
    >>> root = tempfile.mkdtemp()
    >>> shards = []
    >>> for i in range(2):
    ...     c = medvec.open(f"{root}/s{i}").create_collection("cases", vectors={"v": (2, "l2")})
    ...     c.upsert([f"r{i}"], vectors={"v": np.array([[float(i), 0.0]])})
    ...     shards.append(c)
    >>> medvec.search_shards(shards, "v", np.array([0.9, 0.0]), k=2, exact=True).ids.tolist()
    [['r1', 'r0']]
    """
    shards = list(shards)
    ids, scores = _medvec.search_shards([s._native for s in shards], field, queries, k, filter, ef, exact)
    lookup = shards[0] if shards else None
    return SearchResult(ids, scores, lookup, shards=shards)
