//! demo: builds a store from `fixtures/demo` in a local folder and walks through it.

use anyhow::{Context, Result};
use clap::Args;
use medvec_ingest::import::ImportSource;
use medvec_ingest::load::import_into;
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
    let query = cases.get(&first).context("first record vanished")?.vectors["image"].clone();
    show(
        &cases,
        &cases.search("image", &query, &SearchParams::top(5))?,
    );
    step("filtered: melanoma in patients aged 50 or more (dx = \"mel\" and age >= 50)");
    let mut params = SearchParams::top(5);
    params.filter = Some(Filter::parse("dx = \"mel\" and age >= 50")?);
    show(&cases, &cases.search("image", &query, &params)?);
    step("delete 2 records, compact, verify every checksum");
    let doomed: Vec<String> = cases
        .search("image", &query, &SearchParams::top(2))?
        .into_iter()
        .map(|h| h.id)
        .collect();
    cases.delete(&doomed)?;
    cases.compact()?;
    let reports = store.verify()?;
    for (name, report) in reports {
        println!(
            "  {name}: {} records, {} files verified",
            cases.len(),
            report.files_checked
        );
    }
    println!("\nThe store is in {}; try:\n  medvec stats {} --json\n  medvec search {} ham10000 --field image --like {first} -k 5", args.store.display(), args.store.display(), args.store.display());
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

fn show(cases: &Collection, hits: &[medvec_store::Hit]) {
    for hit in hits {
        let record = cases.get(&hit.id);
        let field = |name: &str| {
            record
                .as_ref()
                .and_then(|r| r.payload.get(name))
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        println!(
            "  {:<14} score {:.3}  dx {:<6} age {:<3} {} {}",
            hit.id,
            hit.score,
            field("dx"),
            field("age"),
            field("sex"),
            field("localization")
        );
    }
}
