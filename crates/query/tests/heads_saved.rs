//! Heads on a collection: kNN heads saved and reloaded, new vectors classified like stored
//! ones, and fields of different dimensions.

mod heads_common;

use heads_common::clusters;
use medvec_query::heads::{HeadSpec, KnnConfig, KnnWeighting, TrainConfig};
use medvec_query::training::{
    classify, classify_vectors, train_head, train_knn_head, FieldSet, HeadModel, MissingField,
    Prediction, SavedHead, SplitSource, TrainRequest,
};
use medvec_query::QueryError;
use medvec_store::{Collection, PayloadField, Record, Schema, Store, Value, VectorField};

/// A collection `cases` with `image` and `text` fields of the given dims and labels `y`.
fn collection(dir: &std::path::Path, dims: (usize, usize)) -> std::sync::Arc<Collection> {
    let store = Store::create(dir.join("s")).unwrap();
    let schema = Schema {
        vectors: vec![
            VectorField::parse(&format!("text:{}:cosine", dims.0)).unwrap(),
            VectorField::parse(&format!("image:{}:cosine", dims.1)).unwrap(),
        ],
        payload: vec![PayloadField::parse("y:string").unwrap()],
    };
    let cases = store.create_collection("cases", schema).unwrap();
    let data = clusters(&[120, 90, 60], dims, 0.6, 9);
    let records: Vec<Record> = (0..data.labels.len())
        .map(|r| {
            Record::new(format!("r{r:04}"))
                .with_vector("text", data.text.row(r).to_vec())
                .with_vector("image", data.image.row(r).to_vec())
                .with_value("y", Value::String(format!("c{}", data.labels[r])))
        })
        .collect();
    cases.upsert(&records).unwrap();
    cases
}

fn request(lambdas: Vec<f32>) -> TrainRequest {
    TrainRequest {
        spec: HeadSpec::late(),
        label_field: "y".into(),
        // Text first, as the paper's code concatenates them; the pair says which is the image.
        fields: FieldSet::new(
            vec!["text".into(), "image".into()],
            Some(["image".into(), "text".into()]),
        )
        .unwrap(),
        split: SplitSource::Fractions(Default::default(), 3),
        lambdas,
        config: TrainConfig {
            max_epochs: 8,
            ..TrainConfig::default()
        },
    }
}

fn stored_predictions(cases: &Collection, saved: &SavedHead) -> Vec<Prediction> {
    let mut out = Vec::new();
    classify(cases, saved, None, (50, MissingField::Error), |p| {
        out.push(p);
        Ok(())
    })
    .unwrap();
    out
}

/// Classifies the stored records' vectors as if they were new inputs.
fn fresh_predictions(cases: &Collection, saved: &SavedHead) -> Vec<Prediction> {
    let (mut ids, mut image, mut text) = (Vec::new(), Vec::new(), Vec::new());
    cases
        .scan(|mut r| {
            image.push(r.vectors.remove("image").unwrap());
            text.push(r.vectors.remove("text").unwrap());
            ids.push(r.id);
            Ok(())
        })
        .unwrap();
    classify_vectors(saved, &ids, &[text, image]).unwrap()
}

fn same_predictions(a: &[Prediction], b: &[Prediction]) {
    assert_eq!(a.len(), b.len());
    for (p, q) in a.iter().zip(b) {
        assert_eq!((&p.id, &p.class), (&q.id, &q.class));
        assert_eq!(p.probabilities, q.probabilities, "{}", p.id);
    }
}

#[test]
fn a_knn_head_survives_save_and_load_and_classifies_new_vectors_alike() {
    let dir = tempfile::tempdir().unwrap();
    let cases = collection(dir.path(), (16, 16));
    let knn = KnnConfig {
        k: 7,
        weighting: KnnWeighting::Distance,
        ..KnnConfig::default()
    };
    let trained = train_knn_head(&cases, &request(vec![-0.5, 0.0, 0.5]), knn, &mut |_| {}).unwrap();
    assert_eq!(trained.meta.fusion, "knn");
    assert_eq!(
        trained.training.as_ref().unwrap().ids.len(),
        trained.meta.rows[0]
    );
    trained.save(&cases, "knn").unwrap();
    let loaded = SavedHead::load(&cases, "knn").unwrap();
    assert!(matches!(loaded.model, HeadModel::Knn(_)));
    // (f64 metrics go through JSON and may move by an ulp; the model inputs must not.)
    let key = |m: &medvec_query::training::HeadMeta| {
        (
            m.lambda,
            m.delta.clone(),
            m.knn,
            m.fingerprint.clone(),
            m.classes.clone(),
        )
    };
    assert_eq!(key(&loaded.meta), key(&trained.meta));
    let stored = stored_predictions(&cases, &loaded);
    same_predictions(&stored, &stored_predictions(&cases, &trained));
    same_predictions(&stored, &fresh_predictions(&cases, &loaded));
    let right = stored
        .iter()
        .filter(|p| p.truth.as_deref() == Some(p.class.as_str()))
        .count();
    assert!(right * 10 > stored.len() * 8, "{right} of {}", stored.len());
}

#[test]
fn a_knn_head_refuses_changed_training_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = collection(dir.path(), (8, 8));
    let trained = train_knn_head(
        &cases,
        &request(vec![0.0]),
        KnnConfig::default(),
        &mut |_| {},
    )
    .unwrap();
    trained.save(&cases, "knn").unwrap();
    let id = trained.training.as_ref().unwrap().ids[5].clone();
    let mut record = cases.get(&id).unwrap().unwrap();
    record.vectors.get_mut("image").unwrap()[0] += 1.0;
    cases.upsert(&[record]).unwrap();
    let err = SavedHead::load(&cases, "knn").unwrap_err().to_string();
    assert!(err.contains("changed since training"), "{err}");
    // Metadata stays readable.
    assert_eq!(SavedHead::load_meta(&cases, "knn").unwrap().fusion, "knn");
}

#[test]
fn new_vectors_get_the_same_shift_as_stored_records() {
    let dir = tempfile::tempdir().unwrap();
    let cases = collection(dir.path(), (12, 12));
    let trained = train_head(&cases, &request(vec![0.8])).unwrap();
    assert_eq!(trained.meta.lambda, 0.8);
    trained.save(&cases, "late").unwrap();
    let loaded = SavedHead::load(&cases, "late").unwrap();
    same_predictions(
        &stored_predictions(&cases, &loaded),
        &fresh_predictions(&cases, &loaded),
    );
    // A row of the wrong width is refused, not truncated.
    let err = classify_vectors(
        &loaded,
        &["x".into()],
        &[vec![vec![1.0; 12]], vec![vec![1.0; 11]]],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("expects 12"), "{err}");
}

#[test]
fn fields_of_different_dimensions_train_unshifted_at_full_width() {
    let dir = tempfile::tempdir().unwrap();
    let cases = collection(dir.path(), (20, 6));
    let saved = train_head(&cases, &request(vec![0.0])).unwrap();
    assert_eq!(
        saved.model.dims(),
        [20, 6],
        "no dimension is cut to the other's width"
    );
    assert_eq!(saved.meta.params, HeadSpec::late().param_count(&[20, 6], 3));
    assert!(saved.meta.delta.is_empty());
    same_predictions(
        &stored_predictions(&cases, &saved),
        &fresh_predictions(&cases, &saved),
    );
    let err = train_head(&cases, &request(vec![0.0, 0.5])).err().unwrap();
    assert!(matches!(err, QueryError::DimensionMismatch { .. }), "{err}");
}

/// A head file whose metadata and model disagree (damaged, or written by hand) is an error when
/// loaded, never a panic later in classify or export.
#[test]
fn metadata_that_disagrees_with_the_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = collection(dir.path(), (12, 12));
    train_head(&cases, &request(vec![0.5]))
        .unwrap()
        .save(&cases, "late")
        .unwrap();
    let body = cases.load_head("late").unwrap();
    let len = u32::from_le_bytes(body[..4].try_into().unwrap()) as usize;
    let meta: serde_json::Value = serde_json::from_slice(&body[4..4 + len]).unwrap();
    let rewrite = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut meta = meta.clone();
        edit(&mut meta);
        let json = serde_json::to_vec(&meta).unwrap();
        let mut changed = (json.len() as u32).to_le_bytes().to_vec();
        changed.extend_from_slice(&json);
        changed.extend_from_slice(&body[4 + len..]);
        cases.save_head("changed", &changed).unwrap();
        SavedHead::load(&cases, "changed")
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let extra_field = rewrite(&|m| m["fields"].as_array_mut().unwrap().push("image".into()));
    assert!(extra_field.contains("named twice"), "{extra_field}");
    let third = rewrite(&|m| m["fields"] = serde_json::json!(["text", "image", "other"]));
    assert!(
        third.contains("names 3 fields, the model reads 2"),
        "{third}"
    );
    let classes = rewrite(&|m| m["classes"].as_array_mut().unwrap().push("c9".into()));
    assert!(classes.contains("4 classes, the model has 3"), "{classes}");
    let delta = rewrite(&|m| m["delta"].as_array_mut().unwrap().truncate(3));
    assert!(delta.contains("needs Δ as wide as its pair"), "{delta}");
    let no_pair = rewrite(&|m| {
        m.as_object_mut().unwrap().remove("shift_pair");
    });
    assert!(no_pair.contains("without a shift pair"), "{no_pair}");
}
