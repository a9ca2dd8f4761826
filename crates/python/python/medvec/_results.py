"""What a search returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from ._collection import Collection


class SearchResult:
    """The hits of a batch of queries: ``.ids`` (numpy str) and ``.scores`` (float32), both of
    shape ``(n_queries, k)``, best first. A query with fewer than ``k`` hits is padded with id
    ``""`` and score NaN. Unpacks as ``ids, scores = coll.search(...)``.

    Scores are the CLI's: cosine similarity for cosine fields, the L2 distance for l2 fields
    (smaller is better), the dot product for dot fields.
    """

    def __init__(
        self,
        ids: Sequence[str],
        scores: np.ndarray,
        collection: "Collection | None",
        shards: "Sequence[Collection]" = (),
    ):
        n, k = scores.shape
        self.ids: np.ndarray = np.asarray(ids, dtype=np.str_).reshape(n, k)
        self.scores: np.ndarray = scores
        self._collection = collection
        self._shards = list(shards)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.ids, self.scores))

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __repr__(self) -> str:
        n, k = self.ids.shape
        return f"medvec.SearchResult({n} queries × k={k})"

    def to_pandas(self, payload: bool | Sequence[str] = True) -> "pandas.DataFrame":
        """A long table: one row per hit with ``query``, ``rank``, ``id``, ``score`` and the
        hits' payload fields joined (all of them, the ones named, or none with ``False``).

        >>> import medvec, numpy as np, tempfile
        >>> c = medvec.open(tempfile.mkdtemp() + "/s").create_collection(
        ...     "c", vectors={"v": 2}, payload={"dx": str})
        >>> c.upsert(["a", "b"], vectors={"v": np.eye(2)}, payload={"dx": ["nv", "mel"]})
        >>> c.search("v", np.eye(2), k=1).to_pandas()[["query", "id", "dx"]].values.tolist()
        [[0, 'a', 'nv'], [1, 'b', 'mel']]
        """
        import pandas as pd

        n, k = self.ids.shape
        found = self.ids != ""
        queries, ranks = np.nonzero(found)
        frame = pd.DataFrame(
            {
                "query": queries.astype(np.int64),
                "rank": ranks.astype(np.int64),
                "id": self.ids[found].astype(object),
                "score": self.scores[found],
            }
        )
        if payload is False or self._collection is None or frame.empty:
            return frame
        fields = None if payload is True else list(payload)
        unique = list(dict.fromkeys(frame["id"]))
        rows: dict[str, Any] = {}
        for source in self._shards or [self._collection]:
            missing = [i for i in unique if i not in rows]
            if not missing:
                break
            for record in source.get(missing, with_vectors=False):
                if record is not None:
                    rows[record["id"]] = record["payload"]
        names = fields if fields is not None else _payload_names(self._collection)
        for name in names:
            frame[name] = [rows.get(i, {}).get(name) for i in frame["id"]]
        return frame


def _payload_names(collection: "Collection") -> list[str]:
    return [f["name"] for f in collection.schema["payload"]]
