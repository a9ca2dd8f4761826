"""The Spark examples in local[2] against the medvec CLI on the same data.

Classification: the job's predictions equal `medvec classify` (new vectors and stored records):
same ids and classes, probabilities within 1e-6. Ingest: 4 partitions write 4 shards that
together hold every accepted manifest row once, and their merged exact top-k equals an
unsharded `medvec ingest` of the same manifest searched exactly.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the jobs, under any import mode

import classify_job  # noqa: E402
import ingest_job  # noqa: E402
import medvec  # noqa: E402
import sparkjob  # noqa: E402

REPO = sparkjob.REPO
CLASSES = ["bkl", "mel", "nv"]
TINY_IMAGE = REPO / "fixtures" / "models" / "tiny-image"
TINY_TEXT = REPO / "fixtures" / "models" / "tiny-text"


def medvec_bin() -> str:
    path = os.environ.get("MEDVEC_BIN", str(REPO / "target" / "release" / "medvec"))
    if not Path(path).exists():
        pytest.fail(f"{path} does not exist: build it with `cargo build --release` (tools/test.sh does)")
    return path


def cli(*args, ok=(0,)) -> subprocess.CompletedProcess:
    done = subprocess.run([medvec_bin(), *map(str, args)], capture_output=True, text=True)
    if done.returncode not in ok:
        raise AssertionError(f"medvec {' '.join(map(str, args))} exited {done.returncode}: {done.stderr}")
    return done


def read_csv(path) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("PySpark needs Java (17): no `java` on PATH and JAVA_HOME is unset; install openjdk-17-jre-headless")
    medvec_bin()
    session = sparkjob.session("local[2]", "medvec-spark-tests")
    # Small Arrow batches: each task calls classify several times with the head it cached.
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "64")
    yield session
    session.stop()


# --- classification ------------------------------------------------------------------------


def clustered_cases(n: int, seed: int, dim: int = 32):
    """Two modalities around their own offsets (a modality gap) carrying three classes, as in
    crates/python/tests/conftest.py; a train/val/test split."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    centres = np.random.default_rng(0).normal(size=(len(CLASSES), dim))  # shared by every seed
    offsets = np.random.default_rng(1).normal(size=(2, dim)) * 2
    signal = centres[labels] + rng.normal(scale=2.5, size=(n, dim))
    image = (signal + offsets[0] + rng.normal(scale=0.5, size=(n, dim))).astype(np.float32)
    text = (signal + offsets[1] + rng.normal(scale=0.5, size=(n, dim))).astype(np.float32)
    split = rng.choice(["train", "val", "test"], size=n, p=[0.6, 0.2, 0.2])
    ids = [f"s{seed}-case{i:04d}" for i in range(n)]
    return ids, image, text, [CLASSES[i] for i in labels], split.tolist()


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """A store with 600 labelled cases and two saved heads, `dx-late` and `dx-knn` (which
    reads its training vectors back from the store). Both shift their inputs (λ ≠ 0), so the
    job must apply the head's Δ exactly as the CLI does."""
    path = tmp_path_factory.mktemp("clinic") / "store"
    ids, image, text, dx, split = clustered_cases(600, seed=7)
    with medvec.open(path) as store:
        cases = store.create_collection("cases", vectors={"image": 32, "text": 32}, payload={"dx": str, "split": str})
        cases.upsert(ids, vectors={"image": image, "text": text}, payload={"dx": dx, "split": split})
        cases.train("dx", "dx-late", head="late", shift=1.0, split_column="split", epochs=10)
        cases.train("dx", "dx-knn", head="knn", shift=0.5, split_column="split", k=5)
    return path


@pytest.fixture(scope="module")
def new_cases(tmp_path_factory):
    """500 cases that are not in the store: Parquet (two files, so two tasks; an extra column
    the job must ignore), Feather with FixedSizeList vectors, and the CLI's .npy + ids form."""
    root = tmp_path_factory.mktemp("new")
    ids, image, text, dx, _ = clustered_cases(500, seed=8)
    lists = lambda m: pa.array(list(m), type=pa.list_(pa.float32()))  # noqa: E731
    table = pa.table({"id": ids, "note": ["x"] * len(ids), "image": lists(image), "text": lists(text)})
    (root / "vectors").mkdir()
    pq.write_table(table.slice(0, 250), root / "vectors" / "part-0.parquet")
    pq.write_table(table.slice(250), root / "vectors" / "part-1.parquet")
    fixed = lambda m: pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), m.shape[1])  # noqa: E731
    pyarrow.feather.write_feather(pa.table({"id": ids, "image": fixed(image), "text": fixed(text)}), root / "vectors.feather")
    np.save(root / "image.npy", image)
    np.save(root / "text.npy", text)
    (root / "ids.txt").write_text("\n".join(ids) + "\n")
    return root, dict(zip(ids, dx))


def job_predictions(path) -> list:
    """The job's Parquet output as rows sorted by id (Spark writes them in no order)."""
    rows = pq.read_table(path).to_pylist()
    return sorted(rows, key=lambda r: r["id"])


def assert_same_predictions(ours: list, theirs: list) -> None:
    theirs = sorted(theirs, key=lambda r: r["id"])
    assert [r["id"] for r in ours] == [r["id"] for r in theirs]
    assert len({r["id"] for r in ours}) == len(ours), "an id was classified twice"
    assert [r["predicted"] for r in ours] == [r["predicted"] for r in theirs]
    assert set(ours[0]) == {"id", "predicted", *(f"p_{c}" for c in CLASSES)}
    for c in CLASSES:
        np.testing.assert_allclose([r[f"p_{c}"] for r in ours], [float(r[f"p_{c}"]) for r in theirs], rtol=0, atol=1e-6)


@pytest.mark.parametrize("head, source", [("dx-late", "vectors"), ("dx-knn", "vectors"), ("dx-late", "vectors.feather")])
def test_classify_new_vectors_equals_the_cli(spark, clinic, new_cases, tmp_path, head, source):
    root, truth = new_cases
    count = classify_job.run(spark, clinic, "cases", head, tmp_path / "preds", input=root / source)
    assert count == len(truth)
    ours = job_predictions(tmp_path / "preds")
    npy = f"image={root / 'image.npy'},text={root / 'text.npy'}"
    ids = root / "ids.txt"
    cli("classify", clinic, "cases", "--head", head, "--input-npy", npy, "--ids", ids, "--out", tmp_path / "cli.csv")
    assert_same_predictions(ours, read_csv(tmp_path / "cli.csv"))
    accuracy = np.mean([r["predicted"] == truth[r["id"]] for r in ours])
    assert accuracy > 0.6  # the head learnt the classes: equal outputs of a useless head prove little


@pytest.mark.parametrize("filter", ['split = "test"', None])
def test_classify_stored_records_equals_the_cli(spark, clinic, tmp_path, filter):
    count = classify_job.run(spark, clinic, "cases", "dx-late", tmp_path / "preds", filter=filter, partitions=4)
    flags = ["--filter", filter] if filter else []
    cli("classify", clinic, "cases", "--head", "dx-late", *flags, "--out", tmp_path / "cli.csv")
    theirs = read_csv(tmp_path / "cli.csv")
    assert count == len(theirs) > 50
    if filter is None:
        assert count == len(medvec.open(clinic, read_only=True)["cases"])
    assert_same_predictions(job_predictions(tmp_path / "preds"), theirs)


def test_the_head_is_loaded_once_per_python_worker(spark, clinic):
    ref = classify_job.HeadRef(str(clinic), "cases", "dx-late")

    def probe(batches):  # pickled by value; `classify_job` is imported on the executor by name
        import os

        import classify_job

        for _ in batches:
            loaded = classify_job.load_head(ref)
            yield pa.RecordBatch.from_pydict({"pid": [os.getpid()], "head": [id(loaded)]})

    sparkjob.ship(spark, "sparkjob", "classify_job")
    rows = spark.range(0, 12, numPartitions=12).mapInArrow(probe, "pid long, head long").collect()
    assert len(rows) == 12
    tasks = Counter(row.pid for row in rows)
    assert max(tasks.values()) > 1, f"no Python worker ran two tasks: {tasks}"
    heads = {pid: {row.head for row in rows if row.pid == pid} for pid in tasks}
    assert all(len(loaded) == 1 for loaded in heads.values()), f"a worker loaded the head twice: {heads}"


def test_classify_refuses_bad_arguments_before_running(spark, clinic, new_cases, tmp_path):
    root, _ = new_cases
    with pytest.raises(ValueError, match="--filter selects stored records"):
        classify_job.run(spark, clinic, "cases", "dx-late", tmp_path / "a", input=root / "vectors", filter='dx = "nv"')
    with pytest.raises(medvec.InvalidInput, match="no head named 'nope'"):
        classify_job.run(spark, clinic, "cases", "nope", tmp_path / "b", input=root / "vectors")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --- distributed ingest into shards --------------------------------------------------------


def write_images(folder: Path, count: int) -> list:
    """``count`` distinct images (a random 4×4 colour grid, smoothly upscaled to a random size)
    as PNG and JPEG; returns their paths relative to the archive root."""
    from PIL import Image

    rng = np.random.default_rng(3)
    folder.mkdir()
    paths = []
    for i in range(count):
        grid = Image.fromarray(rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8))
        size = (int(rng.integers(40, 120)), int(rng.integers(40, 120)))
        name = f"gen/img{i:03d}.{'png' if i % 2 else 'jpg'}"
        grid.resize(size, Image.BILINEAR).save(folder.parent / name)
        paths.append(name)
    return paths


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The fixture archive (8 good and 8 bad rows over fixtures/images) plus 40 generated
    images, one of them with a comma and quotes in its payload: (manifest, root, good ids)."""
    base = tmp_path_factory.mktemp("archive")
    root = base / "images"
    shutil.copytree(REPO / "fixtures" / "images", root)
    rows = read_csv(REPO / "fixtures" / "archive" / "manifest.csv")
    columns = list(rows[0])
    for i, path in enumerate(write_images(root / "gen", 40)):
        where = 'upper extremity, "left"' if i == 0 else ["back", "face", "scalp"][i % 3]
        age = "" if i % 9 == 0 else str(20 + i)
        payload = dict(dx=CLASSES[i % 3], dx_type="histo", age=age, sex="female", localization=where, split="train")
        rows.append(dict(id=f"GEN_{i:03d}", path=path, **payload))
    manifest = base / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    good = sorted(r["id"] for r in rows if not r["id"].startswith("BAD_"))
    return manifest, root, good


def ingest_into_shards(spark, archive, shards) -> list:
    manifest, root, _ = archive
    models = dict(image_model=TINY_IMAGE, text_model=TINY_TEXT, template="ham10000")
    return ingest_job.run(spark, manifest, shards, "archive", root, partitions=4, medvec_bin=medvec_bin(), threads=1, **models)


@pytest.fixture(scope="module")
def ingested(spark, archive, tmp_path_factory):
    """The job's 4 shards and an unsharded `medvec ingest` of the same manifest."""
    manifest, root, _ = archive
    out = tmp_path_factory.mktemp("ingest")
    reports = ingest_into_shards(spark, archive, out / "shards")
    cli("ingest", out / "whole", "archive", "--manifest", manifest, "--root", root, "--image-model", TINY_IMAGE,
        "--text-model", TINY_TEXT, "--template", "ham10000", "--threads", "1", "--rejects", out / "rejects.csv", ok=(3,))
    return reports, out / "whole", out / "rejects.csv"


def stored_rows(path, fields=()) -> list:
    """The id and ``fields`` of every record of collection `archive` in store ``path``."""
    return medvec.open(path, read_only=True)["archive"].to_arrow(fields=list(fields)).to_pylist()


def stored_ids(path) -> list:
    return [row["id"] for row in stored_rows(path)]


def test_shards_hold_every_accepted_row_exactly_once(ingested, archive):
    reports, whole, rejects = ingested
    manifest, _, good = archive
    assert [r["partition"] for r in reports] == [0, 1, 2, 3]
    assert sum(r["rows"] for r in reports) == len(read_csv(manifest))
    per_shard = [stored_ids(r["shard"]) for r in reports]
    assert all(per_shard), f"a shard is empty: {[len(ids) for ids in per_shard]}"
    assert [len(ids) for ids in per_shard] == [r["ingested"] for r in reports]
    everything = [i for ids in per_shard for i in ids]
    assert sorted(everything) == good == sorted(stored_ids(whole))  # each good row once
    rejected = [row for r in reports if r["rejects"] for row in read_csv(r["rejects"])]
    assert sorted((r["id"], r["reason"]) for r in rejected) == sorted((r["id"], r["reason"]) for r in read_csv(rejects))


def test_a_rerun_resumes_into_the_same_shards(spark, ingested, archive):
    reports, _, _ = ingested
    again = ingest_into_shards(spark, archive, Path(reports[0]["shard"]).parent)
    assert [r["ingested"] for r in again] == [0, 0, 0, 0]
    assert [r["skipped"] for r in again] == [r["ingested"] for r in reports]  # each id went to its shard again
    assert sorted(i for r in again for i in stored_ids(r["shard"])) == archive[2]


def test_payload_survives_the_partition_manifests(ingested):
    reports, whole, _ = ingested
    fields = ["age", "localization", "dx", "split"]
    expected = {row["id"]: row for row in stored_rows(whole, fields)}
    for report in reports:
        for row in stored_rows(report["shard"], fields):
            assert row == expected[row["id"]]
    assert expected["GEN_000"]["localization"] == 'upper extremity, "left"'


@pytest.mark.parametrize("field, filter", [("image", None), ("text", None), ("image", 'dx = "bkl"')])
def test_merged_exact_top_k_of_the_shards_equals_one_collection(ingested, field, filter, tmp_path):
    reports, whole, _ = ingested
    one = medvec.open(whole, read_only=True)["archive"]
    shards = ingest_job.open_shards([r["shard"] for r in reports], "archive")
    queries = one.to_pandas(fields=[field])[field].iloc[::4]
    queries = np.stack(queries.to_list()) + np.float32(0.01)
    merged = medvec.search_shards(shards, field, queries, k=10, filter=filter, exact=True)
    expected = one.search(field, queries, k=10, filter=filter, exact=True)
    assert merged.ids.tolist() == expected.ids.tolist()
    np.testing.assert_allclose(merged.scores, expected.scores, rtol=0, atol=1e-6)
    assert (merged.ids != "").all()

    np.save(tmp_path / "q.npy", queries.astype(np.float32))
    first, *rest = [r["shard"] for r in reports]
    stores = [arg for path in rest for arg in ("--store", path)]
    flags = ["--filter", filter] if filter else []
    query_flags = ["--field", field, "--queries", tmp_path / "q.npy", "--exact", "-k", "10", "--json", *flags]
    printed = cli("search", first, "archive", *stores, *query_flags)
    theirs = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [[h["id"] for h in q["hits"]] for q in theirs] == merged.ids.tolist()
    np.testing.assert_allclose([[h["score"] for h in q["hits"]] for q in theirs], merged.scores, rtol=0, atol=1e-6)


def test_search_like_leaves_the_record_out_as_the_cli_does(ingested):
    reports, _, _ = ingested
    paths = [r["shard"] for r in reports]
    hits = ingest_job.search_like(paths, "archive", "image", "ISIC_0027419", k=5, exact=True)
    command = ingest_job.cli_search(medvec_bin(), paths, "archive", "image", "ISIC_0027419", k=5)
    printed = subprocess.run([*command, "--exact", "--json"], capture_output=True, text=True, check=True)
    theirs = json.loads(printed.stdout)["hits"]
    assert hits["id"].tolist() == [h["id"] for h in theirs]
    assert "ISIC_0027419" not in hits["id"].tolist() and hits["rank"].tolist() == [1, 2, 3, 4, 5]
    assert hits["dx"].notna().all()  # payload joined from whichever shard holds each hit
