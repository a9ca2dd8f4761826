"""Ingest from Python equals `medvec ingest` of the same archive: the same records, vectors and
rejects, resuming, progress reports, and clear errors for bad arguments."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import medvec
from conftest import ROOT, cli

FIXTURES = ROOT / "fixtures"
ARCHIVE = dict(
    manifest=FIXTURES / "archive" / "manifest.csv",
    root=FIXTURES / "images",
)
MODELS = dict(image_model=FIXTURES / "models" / "tiny-image", text_model=FIXTURES / "models" / "tiny-text", template="ham10000")


def records(path, collection="cases"):
    reader = medvec.open(path, read_only=True)
    table = reader[collection].to_pandas()
    reader.close()
    return table.set_index("id").sort_index()


def test_ingest_equals_the_cli(tmp_path):
    calls = []
    with medvec.open(tmp_path / "py") as store:
        summary = store.ingest("cases", **ARCHIVE, **MODELS, rejects=tmp_path / "py-rejects.csv", progress=lambda *c: calls.append(c))
    done = cli("ingest", tmp_path / "cli", "cases", "--manifest", ARCHIVE["manifest"], "--root", ARCHIVE["root"],
               "--image-model", MODELS["image_model"], "--text-model", MODELS["text_model"], "--template", "ham10000",
               "--rejects", tmp_path / "cli-rejects.csv", "--json", check=False)
    assert done.returncode == 3, done.stderr  # the fixture archive has bad rows on purpose
    theirs = __import__("json").loads(done.stdout)
    for key in ("ingested", "skipped", "rejected", "status"):
        assert summary[key] == theirs[key], key
    assert summary["ingested"] > 0 and summary["rejected"] > 0 and summary["status"] == "partial"
    ours, cli_records = records(tmp_path / "py"), records(tmp_path / "cli")
    assert ours.index.tolist() == cli_records.index.tolist()
    for field in ("image", "text"):
        np.testing.assert_array_equal(np.stack(ours[field].values), np.stack(cli_records[field].values))
    assert ours.drop(columns=["image", "text"]).equals(cli_records.drop(columns=["image", "text"]))
    with open(tmp_path / "py-rejects.csv") as a, open(tmp_path / "cli-rejects.csv") as b:
        assert list(csv.reader(a)) == list(csv.reader(b))
    assert calls and calls[-1][0] == calls[-1][1]  # the last report covers every row
    assert calls[-1][2:] == (summary["ingested"], summary["skipped"], summary["rejected"])


def test_resume_skips_stored_rows_and_tqdm_reports(tmp_path, capsys):
    with medvec.open(tmp_path / "s") as store:
        first = store.ingest("cases", **ARCHIVE, image_model=MODELS["image_model"], rejects=tmp_path / "r.csv", progress=False)
        again = store["cases"].ingest(**ARCHIVE, image_model=MODELS["image_model"], rejects=tmp_path / "r.csv", progress=True)
    assert again["ingested"] == 0 and again["skipped"] == first["ingested"]
    assert "ingest cases" in capsys.readouterr().err  # the tqdm bar


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_model="/no/such/model"), r"/no/such/model"),
        (dict(image_model=MODELS["image_model"], window="wide"), r"window: "),
        (dict(image_model=MODELS["image_model"], frames="some"), r"frames: "),
        (dict(image_model=MODELS["image_model"], dicom_tags=["PatientName"]), r"dicom_tags: .*PatientName"),
        (dict(image_model=MODELS["image_model"], text_model=MODELS["text_model"]), r"template: a text model needs a template"),
        (dict(image_model=MODELS["image_model"], colour="red"), r"unknown option 'colour'"),
    ],
)
def test_bad_ingest_arguments(tmp_path, kwargs, message):
    with medvec.open(tmp_path / "s") as store:
        with pytest.raises(medvec.InvalidInput, match=message):
            store.ingest("cases", **ARCHIVE, progress=False, **kwargs)
        assert store.collections() == []
    with medvec.open(tmp_path / "t") as store:
        with pytest.raises(medvec.InvalidInput, match="root is not a folder"):
            store.ingest("cases", ARCHIVE["manifest"], tmp_path / "missing", image_model=MODELS["image_model"])
