"""The collection handle: records in and out, search, tables, the gap and fusion heads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, Tuple, Union

import numpy as np

from . import _medvec
from ._errors import InvalidInput
from ._results import SearchResult

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import pyarrow

    from ._store import Store

Shift = Union[float, str, Sequence[float]]


def _ids(ids: Any, arg: str = "ids") -> list[str]:
    if isinstance(ids, str):
        return [ids]
    try:
        out = [i if isinstance(i, str) else str(i) for i in ids]
    except TypeError:
        raise InvalidInput(f"{arg}: expected a list of str, got {type(ids).__name__}") from None
    return out


def _payload_columns(payload: Any, rows: int) -> dict[str, list]:
    """Payload as one list per field: from a pandas DataFrame, a pyarrow Table or a dict of
    sequences (numpy arrays, lists, pandas Series)."""
    if payload is None:
        return {}
    if hasattr(payload, "to_pydict") and hasattr(payload, "schema"):  # pyarrow.Table
        return {k: list(v) for k, v in payload.to_pydict().items()}
    if hasattr(payload, "columns") and hasattr(payload, "to_dict"):  # pandas.DataFrame
        return {str(c): payload[c].tolist() for c in payload.columns}
    if isinstance(payload, Mapping):
        out = {}
        for name, column in payload.items():
            if hasattr(column, "tolist"):
                column = column.tolist()
            elif isinstance(column, (str, bytes)) or not isinstance(column, Iterable):
                raise InvalidInput(f"payload[{name!r}]: expected one value per id, got {type(column).__name__}")
            out[str(name)] = list(column)
        return out
    raise InvalidInput(f"payload: expected a pandas DataFrame, a pyarrow Table or a dict, got {type(payload).__name__}")


def _matrix(column: Any) -> np.ndarray:
    """Vectors given as a 2-d array, or as a sequence of 1-d arrays (a DataFrame column)."""
    if isinstance(column, np.ndarray) and column.dtype != object:
        return column
    if hasattr(column, "to_numpy"):
        column = column.to_numpy()
    return np.stack([np.asarray(v, dtype=np.float32) for v in column]) if len(column) else np.zeros((0, 0), np.float32)


class Collection:
    """A collection of records: vector fields, payload fields and saved heads."""

    def __init__(self, native: Any, store: "Store"):
        self._native = native
        self._store = store

    @property
    def name(self) -> str:
        return self._native.name

    @property
    def store(self) -> "Store":
        return self._store

    @property
    def schema(self) -> dict:
        """``{"vectors": [{"name", "dim", "metric", "hnsw"}], "payload": [{"name", "type"}]}``."""
        return self._native.schema()

    def __len__(self) -> int:
        return self._native.__len__()

    def __repr__(self) -> str:
        return f"medvec.Collection({self.name!r}, {len(self)} records)"

    def stats(self) -> dict:
        """The collection's counts, as ``medvec stats --json`` shows them."""
        return self._native.stats()

    # --- records -------------------------------------------------------------------------

    def upsert(self, ids: Sequence[str], vectors: Mapping[str, np.ndarray] | None = None, payload: Any = None) -> None:
        """Inserts or replaces records, all or nothing (one WAL batch).

        ``vectors`` maps vector fields to float32/float64 arrays with one row per id (C or
        Fortran order); ``payload`` is a pandas DataFrame, a pyarrow Table or a dict of columns,
        one value per id (``None``/NaN for a missing value). A wrong dimension, a NaN vector or
        a value of the wrong type raises ``InvalidInput`` naming the argument, and nothing is
        stored.

        >>> import medvec, numpy as np, tempfile
        >>> c = medvec.open(tempfile.mkdtemp() + "/s").create_collection(
        ...     "c", vectors={"image": 3}, payload={"dx": str, "age": int})
        >>> c.upsert(["a", "b"], vectors={"image": np.ones((2, 3))},
        ...          payload={"dx": ["nv", "mel"], "age": [40, None]})
        >>> len(c)
        2
        """
        ids = _ids(ids)
        columns = _payload_columns(payload, len(ids))
        self._native.upsert(ids, dict(vectors or {}), columns)

    def delete(self, ids: Sequence[str]) -> int:
        """Deletes records by id; returns how many existed."""
        return self._native.delete(_ids(ids))

    def get(self, ids: Union[str, Sequence[str]], with_vectors: bool = True) -> Any:
        """The records with these ids, in order: ``{"id", "payload", "vectors"}`` each (vectors
        as float32 arrays), ``None`` for an id with no record. One id gives one record."""
        records = self._native.get(_ids(ids), with_vectors)
        return records[0] if isinstance(ids, str) else records

    def flush(self) -> None:
        """Writes the buffered records to a segment."""
        self._native.flush()

    def compact(self) -> dict:
        """Rewrites the segments into one, dropping deleted rows (``medvec compact``)."""
        return self._native.compact()

    def verify(self) -> dict:
        """Checks every file's checksum (``medvec verify``); raises ``CorruptFile`` if one fails."""
        return self._native.verify()

    def ingest(self, manifest: Any = None, root: Any = None, **options: Any) -> dict:
        """Encodes an image archive into this collection (``medvec ingest``); see
        :meth:`Store.ingest` for the arguments (``image_model=`` is required).

        >>> cases.ingest("cases.csv", "/data/images", image_model="models/clip-vision")  # doctest: +SKIP
        {'ingested': 1000, 'skipped': 0, 'rejected': 0, 'status': 'complete', ...}
        """
        return self._store.ingest(self.name, manifest, root, **options)

    # --- search --------------------------------------------------------------------------

    def search(
        self,
        field: str,
        queries: np.ndarray,
        k: int = 10,
        filter: str | None = None,
        ef: int | None = None,
        exact: bool = False,
        shift: float = 0.0,
        query_modality: str | None = None,
        *,
        pair: str | None = None,
        fit_filter: str | None = None,
        rescore: int | None = None,
    ) -> SearchResult:
        """Nearest neighbours of each query in ``field`` (``medvec search``).

        ``queries`` is one vector (1-d) or one per row (2-d), float32 or float64. ``filter`` is
        the CLI's filter language (``'dx = "mel" and age >= 50'``). ``shift`` is λ of the
        alignment shift, applied at read time with Δ fitted on the pair (the collection's other
        field, ``pair``, or ``query_modality``) over all records or those matching
        ``fit_filter``; ``query_modality`` names the field the queries are vectors of (text
        queries searching images). ``ef`` is the HNSW beam; by default the field's
        ``ef_search``, scaled by ``(rows / 100k)^0.6`` for graphs of more rows (``stats()``
        shows it as ``default_ef``). On an SQ8 field, ``rescore`` is how many candidates per
        hit the walk keeps for exact re-scoring on the float32 column (default 4, at least 1;
        ``medvec search --rescore``). Returns a :class:`SearchResult` of shape ``(n_queries, k)``.

        >>> import medvec, numpy as np, tempfile
        >>> c = medvec.open(tempfile.mkdtemp() + "/s").create_collection("c", vectors={"v": 2})
        >>> c.upsert(["x", "y"], vectors={"v": np.array([[1.0, 0.0], [0.0, 1.0]])})
        >>> ids, scores = c.search("v", np.array([0.9, 0.1]), k=2)
        >>> ids.tolist(), scores.shape
        ([['x', 'y']], (1, 2))
        """
        if k < 1:
            raise InvalidInput("k: must be at least 1")
        if rescore is not None and rescore < 1:
            raise InvalidInput("rescore: must be at least 1")
        ids, scores = self._native.search(
            field, queries, k, filter, ef, exact, float(shift), query_modality, pair, fit_filter, rescore
        )
        return SearchResult(ids, scores, self)

    # --- tables --------------------------------------------------------------------------

    def _split_fields(self, fields: Sequence[str] | None) -> Tuple[list | None, list | None]:
        if fields is None:
            return None, None
        schema = self.schema
        vector_names = {f["name"] for f in schema["vectors"]}
        vectors = [f for f in fields if f in vector_names]
        payload = [f for f in fields if f not in vector_names]
        return vectors, payload

    def to_arrow(self, fields: Sequence[str] | None = None) -> "pyarrow.Table":
        """The live records as an Arrow table: ``id``, the payload fields (typed) and the vector
        fields as ``FixedSizeList<float32>`` (null where a record lacks the field). ``fields``
        picks the columns (default all).

        The vectors are read once from the mapped segments into one contiguous float32 buffer
        per field, which Arrow then wraps without a copy.
        """
        import pyarrow as pa

        vector_fields, payload_fields = self._split_fields(fields)
        ids, payload, vectors = self._native.columns(vector_fields, payload_fields)
        types = {f["name"]: f["type"] for f in self.schema["payload"]}
        arrow_types = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
        columns = {"id": pa.array(ids, type=pa.string())}
        for name, values in payload.items():
            columns[name] = pa.array(values, type=arrow_types[types[name]])
        for name, matrix in vectors.items():
            columns[name] = _fixed_size_list(pa, matrix)
        order = ["id"] + (list(fields) if fields is not None else list(payload) + list(vectors))
        return pa.table({name: columns[name] for name in order})

    def to_pandas(self, fields: Sequence[str] | None = None) -> "pandas.DataFrame":
        """The live records as a DataFrame: ``id``, payload columns, and vector columns holding
        one float32 array per row (views of one matrix per field)."""
        import pandas as pd

        vector_fields, payload_fields = self._split_fields(fields)
        ids, payload, vectors = self._native.columns(vector_fields, payload_fields)
        data: dict[str, Any] = {"id": ids}
        data.update(payload)
        for name, matrix in vectors.items():
            column = np.empty(len(ids), dtype=object)
            for i in range(len(ids)):
                column[i] = None if np.isnan(matrix[i, 0]) else matrix[i]
            data[name] = column
        order = ["id"] + (list(fields) if fields is not None else list(payload) + list(vectors))
        return pd.DataFrame({name: data[name] for name in order})

    # --- the gap and heads ---------------------------------------------------------------

    def gap(self, fields: Tuple[str, str] | None = None, filter: str | None = None, shift: float | None = None) -> dict:
        """The modality-gap report of the pair (``medvec gap --json``): ‖Δ‖, mean paired
        cosine, mean resultant lengths, PCA-2 variances. With ``shift``, the report after the
        alignment shift with that λ is under the key ``"shifted"``."""
        reports = _medvec.gap(self._native, fields, filter, shift)
        report = reports[0]
        if len(reports) > 1:
            report["shifted"] = reports[1]
        return report

    def train(
        self,
        label: str,
        name: str,
        head: str = "late",
        shift: Shift = 0.0,
        *,
        fields: Sequence[str] | str | None = None,
        shift_pair: Tuple[str, str] | None = None,
        split_column: str | None = None,
        group_column: str | None = None,
        split: Tuple[float, float, float] = (0.7, 0.15, 0.15),
        epochs: int = 30,
        dropout: float = 0.0,
        seed: int = 0,
        k: int = 5,
        knn_weighting: str = "uniform",
        seeds: int = 1,
        cv: int | None = None,
        threshold: str | None = None,
        positive: str | None = None,
    ) -> dict:
        """Trains an ``"early"``, ``"late"`` or ``"knn"`` head to predict payload ``label`` and
        saves it as ``name`` (``medvec train``). ``shift`` is λ, a list of candidate λs, or
        ``"auto"`` for −1..1 by 0.1; λ and the epoch are chosen on validation, never on test.
        ``fields`` names the vector fields the head reads, in order (default: every vector
        field): one gives a single-modality baseline, more are fused (early: concatenated; late:
        one branch each; knn: cosines summed). ``shift_pair=(A, B)`` names the two fields the
        shift moves (Δ = mean(A) − mean(B)); the default is the two fields of a two-field head.
        The split is the payload column ``split_column`` (train/val/test) or a seeded stratified
        ``split``; with ``group_column`` (a lesion or patient id) every group stays in one part. Returns what ``medvec train --json`` prints: ``name``, ``meta`` (λ, classes,
        validation and test metrics), ``curve`` and ``test_report``. With ``seeds=N`` the split
        and training are repeated over N seeds (the head of the first is saved) and
        ``"repeated"`` holds mean ± sd and 95% bootstrap intervals of the test metrics, and
        whether the chosen λ beats λ = 0 by more than that (paired over the seeds). ``cv=K``
        does K-fold cross-validation instead (groups whole with ``group_column``; the validation
        share is ``split``'s val / (train + val)), reported the same way, fold 0's head saved.
        For a two-class label, ``threshold="youden"`` or ``"sensitivity=0.9"`` chooses the
        decision threshold on P(``positive``) on validation (``medvec train --threshold``); it is
        saved with the head, :meth:`classify` applies it and the test report is at it."""
        args = _train_args(head, label, fields, split_column, split, epochs, dropout, seed, k, knn_weighting, group_column, cv, shift_pair)
        if isinstance(shift, str):
            if shift != "auto":
                raise InvalidInput(f"shift: a number, a list of numbers or 'auto', got {shift!r}")
            lambdas = None
        elif isinstance(shift, (int, float, np.floating)):
            lambdas = [float(shift)]
        else:
            lambdas = [float(x) for x in shift]
        return _medvec.train(self._native, args, lambdas, name, int(seeds), threshold, positive)

    def sweep(
        self,
        label: str,
        head: str = "late",
        lambdas: Tuple[float, float, float] = (-1.0, 1.0, 0.1),
        *,
        fields: Sequence[str] | str | None = None,
        shift_pair: Tuple[str, str] | None = None,
        split_column: str | None = None,
        group_column: str | None = None,
        split: Tuple[float, float, float] = (0.7, 0.15, 0.15),
        epochs: int = 30,
        dropout: float = 0.0,
        seed: int = 0,
        k: int = 5,
        knn_weighting: str = "uniform",
        seeds: int = 1,
        cv: int | None = None,
    ) -> "pandas.DataFrame":
        """Trains one head per λ of the grid ``lambdas = (from, to, step)`` and reports
        validation and test macro-F1 (``medvec sweep``): a DataFrame with columns ``lambda``,
        ``val_macro_f1``, ``test_macro_f1``, ``test_accuracy`` and ``chosen`` (the λ chosen on
        validation); ``.attrs["chosen_lambda"]`` holds it too. Nothing is saved. With
        ``seeds=N`` the columns are means over the seeds, with ``val_sd``, ``test_sd``,
        ``test_low`` and ``test_high`` (95% bootstrap interval) added, and
        ``.attrs["repeated"]`` holds the whole report (as :meth:`train`'s)."""
        import pandas as pd

        args = _train_args(head, label, fields, split_column, split, epochs, dropout, seed, k, knn_weighting, group_column, cv, shift_pair)
        result = _medvec.sweep(self._native, args, tuple(float(x) for x in lambdas), int(seeds))
        frame = pd.DataFrame(result["curve"], columns=["lambda", "val_macro_f1", "test_macro_f1", "test_accuracy"])
        repeated = result["repeated"]
        if repeated is not None:
            bands = repeated["curve"]
            frame["val_macro_f1"] = [b["val_macro_f1"]["mean"] for b in bands]
            frame["val_sd"] = [b["val_macro_f1"]["sd"] for b in bands]
            for key, name in (("mean", "test_macro_f1"), ("sd", "test_sd"), ("low", "test_low"), ("high", "test_high")):
                frame[name] = [b["test_macro_f1"][key] if b["test_macro_f1"] else None for b in bands]
            frame = frame.drop(columns=["test_accuracy"])
            frame.attrs["repeated"] = repeated
        frame["chosen"] = frame["lambda"] == result["chosen_lambda"]
        frame.attrs["chosen_lambda"] = result["chosen_lambda"]
        return frame

    def split(
        self,
        label: str,
        *,
        fields: Sequence[str] | str | None = None,
        shift_pair: Tuple[str, str] | None = None,
        split_column: str | None = None,
        group_column: str | None = None,
        split: Tuple[float, float, float] = (0.7, 0.15, 0.15),
        seed: int = 0,
        cv: int | None = None,
        fold: int | None = None,
    ) -> "pandas.DataFrame":
        """The split :meth:`train` would use with these arguments: a DataFrame of ``id`` and
        ``part`` (``"train"``, ``"val"`` or ``"test"``) for every labelled record with every
        field of the head. With ``group_column``, no group is in two parts. With ``cv=K``, the split of
        fold ``fold`` (its test part is that fold)."""
        import pandas as pd

        args = _train_args("early", label, fields, split_column, split, 1, 0.0, seed, 1, "uniform", group_column, cv, shift_pair)
        parts = _medvec.split(self._native, args, fold)
        return pd.DataFrame(
            {"id": [i for p in parts for i in p], "part": [name for name, p in zip(("train", "val", "test"), parts) for _ in p]}
        )

    def heads(self) -> list[dict]:
        """The saved heads: ``[{"name", "meta"}]`` as ``medvec heads --json`` lists them."""
        return _medvec.heads(self._native)

    def classify(
        self,
        head: str,
        data: Any = None,
        *,
        filter: str | None = None,
        ids: Sequence[str] | None = None,
        batch: int = 4096,
        missing: str = "error",
    ) -> "pandas.DataFrame":
        """Classifies with saved head ``head`` (``medvec classify``): stored records (those
        matching ``filter``), or new cases in ``data``, a DataFrame or dict whose columns named
        after the head's fields hold the vectors (a 2-d array, or one array per row). Rows are
        named by ``ids``, ``data["id"]`` or row numbers.

        Returns a DataFrame with ``id``, ``predicted`` and ``p_<class>`` per class, the CLI's
        columns; stored records also get ``truth``, their stored label (``None`` if unknown),
        and ``error``: a stored record lacking one of the head's fields gets an error row
        (``predicted`` None, probabilities NaN), or with ``missing="zero"`` a zero vector for
        that field (``medvec classify --missing``).
        """
        if data is None:
            out = _medvec.classify_stored(self._native, head, filter, batch, missing)
            return _predictions(out, with_truth=True)
        if filter is not None:
            raise InvalidInput("filter: applies to stored records, not to `data`")
        return self.head(head).classify(data, ids=ids)


    def head(self, name: str) -> "Head":
        """Saved head ``name``, loaded once: ``head.classify(data)`` many times without reading it
        again (for a kNN head that means its training vectors), and ``head.meta``."""
        return Head(_medvec.load_head(self._native, name))

    def evaluate(
        self,
        head: str,
        filter: str | None = None,
        *,
        seeds: int | None = None,
        group_column: str | None = None,
        seed: int = 0,
        threshold: float | None = None,
        missing: str = "error",
    ) -> dict:
        """The head's metrics on the stored labels of the records matching ``filter``
        (``medvec eval --json``): accuracy, macro-F1, balanced accuracy, per-class precision,
        recall, F1, support and the confusion matrix. ``seeds=N`` adds ``"intervals"``: 95%
        bootstrap intervals from N resamples of the records, or of whole ``group_column``
        groups (a lesion's images together). A two-class head adds ``"binary"``: ROC-AUC,
        PR-AUC, the expected calibration error, and sensitivity and specificity at
        ``threshold`` (default: the head's own, else 0.5). Records lacking some of the head's
        fields are left out and counted in ``missing_field_rows`` (``missing="error"``) or
        evaluated with zero vectors for those fields and counted in ``zero_filled_rows``
        (``missing="zero"``); ``"missing"`` in the report says which."""
        if group_column is not None and seeds is None:
            raise InvalidInput("group_column: resampling groups needs seeds=N")
        return _medvec.evaluate(self._native, head, filter, seeds, group_column, int(seed), threshold, missing)


class Head:
    """A saved head loaded in memory (see :meth:`Collection.head`)."""

    def __init__(self, native: Any):
        self._native = native
        self.meta: dict = native.meta()

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    def classify(self, data: Any, ids: Sequence[str] | None = None) -> "pandas.DataFrame":
        """Classifies new cases (``medvec classify --input-npy``): ``data`` is a DataFrame or a
        dict whose columns named after the head's fields hold the vectors (a 2-d array, or one
        array per row); rows are named by ``ids``, ``data["id"]`` or row numbers. Returns a
        DataFrame with ``id``, ``predicted`` and ``p_<class>`` per class."""
        fields = self.meta["fields"]
        for field in fields:
            if field not in data:
                raise InvalidInput(f"data: the head needs a `{field}` column of vectors")
        columns = [_matrix(data[field]) for field in fields]
        if ids is None:
            ids = data["id"] if "id" in data else range(len(columns[0]))
        out = self._native.classify(_ids(ids), columns)
        return _predictions(out, with_truth=False)

    def __repr__(self) -> str:
        return f"medvec.Head({self.meta['fusion']}, classes={self.classes})"


def _train_args(head, label, fields, split_column, split, epochs, dropout, seed, k, knn_weighting, group_column=None, cv=None, shift_pair=None) -> dict:
    if len(split) != 3:
        raise InvalidInput(f"split: expected (train, val, test) fractions, got {split!r}")
    if cv is not None and split_column is not None:
        raise InvalidInput("cv, split_column: cross-validation makes its own folds; give one of them")
    return {
        "head": head,
        "label": label,
        "fields": _field_list(fields),
        "shift_pair": _pair(shift_pair, "shift_pair"),
        "split_column": split_column,
        "group_column": group_column,
        "split": tuple(float(x) for x in split),
        "epochs": int(epochs),
        "dropout": float(dropout),
        "seed": int(seed),
        "k": int(k),
        "knn_weighting": knn_weighting,
        "cv": None if cv is None else int(cv),
    }


def _field_list(fields) -> list | None:
    """Vector field names: None (every vector field), one name, or a sequence of names."""
    if fields is None:
        return None
    if isinstance(fields, str):
        return [fields]
    return [str(f) for f in fields]


def _pair(pair, what: str) -> tuple | None:
    if pair is None:
        return None
    if isinstance(pair, str) or len(pair) != 2:
        raise InvalidInput(f"{what}: expected two field names (A, B), got {pair!r}")
    return (str(pair[0]), str(pair[1]))


def _predictions(out: tuple, with_truth: bool) -> "pandas.DataFrame":
    import pandas as pd

    ids, predicted, truth, probabilities, classes, errors = out
    data: dict[str, Any] = {"id": ids, "predicted": predicted}
    for j, name in enumerate(classes):
        data[f"p_{name}"] = probabilities[:, j]
    if with_truth:
        data["truth"] = truth
        data["error"] = errors
    return pd.DataFrame(data)


def _fixed_size_list(pa: Any, matrix: np.ndarray) -> Any:
    rows, dim = matrix.shape
    values = pa.array(matrix.reshape(-1))  # wraps numpy's buffer: no copy
    missing = np.isnan(matrix[:, 0]) if rows and dim else np.zeros(rows, dtype=bool)
    if missing.any():
        return pa.FixedSizeListArray.from_arrays(values, dim, mask=pa.array(missing))
    return pa.FixedSizeListArray.from_arrays(values, dim)
