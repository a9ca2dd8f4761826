//! search.

use super::align::FitArgs;
use super::hits::{payload_columns, table_lines};
use super::print_json;
use anyhow::{bail, Context, Result};
use clap::Args;
use medvec_ingest::encode::{EncoderOptions, Runtime, RuntimeOptions};
use medvec_ingest::models::{self, Modality, QueryEncoder};
use medvec_query::jobs::ShiftOptions;
use medvec_query::shards::search_shards;
use medvec_store::{Collection, Hit, SearchParams, Store};
use serde_json::json;
use std::path::PathBuf;

/// Find the nearest records to one or more query vectors.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  medvec search ./clinic ham10000 --field image --like ISIC_0027419 -k 5 --show dx,age\n  medvec search ./clinic ham10000 --field image --like ISIC_0027419 -k 5 --json\n  medvec search ./clinic ham10000 --field image --queries q.npy --filter 'dx = \"mel\" and age >= 50' --json\n  medvec search ./clinic ham10000 --field text --vector 0.1,0.2,0.3 --exact\n  # cross-modal: the images that best match case X's clinical text, with the gap closed\n  medvec search ./clinic ham10000 --field image --query-modality text --like ISIC_0027419 --shift 1.0 --json\n  # a new photo, or a clinical description, encoded with the models recorded at ingest\n  medvec search ./clinic ham10000 --field image --image new_lesion.jpg -k 5\n  medvec search ./clinic ham10000 --field image --text \"Age: 70 years. Localization: back.\" --shift 1.0"
)]
pub struct SearchArgs {
    store: PathBuf,
    collection: String,
    /// Vector field to search.
    #[arg(long)]
    field: String,
    /// One query vector, comma-separated.
    #[arg(long, group = "query", allow_hyphen_values = true)]
    vector: Option<String>,
    /// Use the stored vector of this record as the query (the record itself is left out).
    #[arg(long, group = "query")]
    like: Option<String>,
    /// A .npy file of query vectors (one per row).
    #[arg(long, group = "query")]
    queries: Option<PathBuf>,
    /// Query images (repeatable), encoded with the image model recorded at ingest.
    #[arg(long, group = "query", num_args = 1..)]
    image: Vec<PathBuf>,
    /// Query texts (repeatable), encoded with the text model recorded at ingest.
    #[arg(long, group = "query", num_args = 1..)]
    text: Vec<String>,
    /// Encode --image / --text with this model folder instead of the recorded one.
    #[arg(long)]
    model: Option<PathBuf>,
    /// With --model: its `.onnx` file, relative to the folder (e.g. `onnx/model_quantized.onnx`).
    #[arg(long, requires = "model", value_name = "FILE")]
    model_file: Option<PathBuf>,
    /// Threads for the query model (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// With --model: decode JPEG query images at Pillow's draft scale (see `medvec ingest
    /// --jpeg-draft`). The recorded model brings its own setting.
    #[arg(long, requires = "model")]
    jpeg_draft: bool,
    /// With --model: DICOM greyscale windowing of query images (`C,W`, `none` or `file`; see
    /// `medvec ingest --window`). The recorded model brings its own setting.
    #[arg(
        long,
        requires = "model",
        value_name = "C,W|none|file",
        allow_hyphen_values = true
    )]
    window: Option<medvec_ingest::dicom::WindowChoice>,
    /// Hits per query.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Payload filter, e.g. 'dx = "mel" and age >= 50'.
    #[arg(long)]
    filter: Option<String>,
    /// HNSW beam width (default: the field's ef_search, scaled up for graphs of over 100k rows
    /// by (rows / 100k)^0.6, so that recall holds as the collection grows).
    #[arg(long)]
    ef: Option<usize>,
    /// SQ8 fields: how many walk candidates per hit are re-scored on the f32 vectors (default 4).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    rescore: Option<usize>,
    /// Scan every vector instead of the HNSW graphs.
    #[arg(long)]
    exact: bool,
    /// The field whose kind of vector the queries are (default: --field; with --image / --text,
    /// the field whose recorded model is of that kind). A text query searching images is
    /// cross-modal retrieval.
    #[arg(long)]
    query_modality: Option<String>,
    /// Apply the alignment shift with this λ (−1..1; positive closes the modality gap).
    #[arg(long, allow_hyphen_values = true)]
    shift: Option<f32>,
    /// With --shift on same-modality search: the other field of the aligned pair.
    #[arg(long)]
    pair: Option<String>,
    #[command(flatten)]
    fit: FitArgs,
    /// Payload fields to show beside each hit, comma-separated (default: every payload field).
    /// Text output only; `--show ''` shows none.
    #[arg(long, value_name = "FIELD,...")]
    show: Option<String>,
    /// Another store holding a shard of the same collection (repeatable): each is searched
    /// and the hits are merged into one top-k (exact with --exact). Not with --shift.
    #[arg(long = "store", value_name = "STORE")]
    shards: Vec<PathBuf>,
    /// One JSON object per query: {"query": i, "hits": [{"id": ..., "score": ...}]}.
    #[arg(long)]
    json: bool,
}

pub fn search(args: SearchArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let collection = store.collection(&args.collection)?;
    let shards = open_shards(&args)?;
    let Queries {
        vectors: queries,
        exclude,
        field: query_field,
    } = read_queries(&args, &collection, &shards)?;
    let params = SearchParams {
        k: args.k + usize::from(exclude.is_some()),
        ef: args.ef,
        exact: args.exact,
        filter: super::parse_filter(args.filter.as_deref(), "--filter")?,
        offset: None,
        rescore: args.rescore,
    };
    let columns = payload_columns(&collection, args.show.as_deref())?;
    let mut all: Vec<&Collection> = vec![&collection];
    all.extend(shards.iter().map(|c| &**c));
    let results = if shards.is_empty() {
        run_search(&args, &collection, &query_field, &queries, params)?
    } else {
        if args.shift.is_some() || query_field != args.field {
            bail!("--store: searching several stores does not combine with --shift or --query-modality yet");
        }
        search_shards(&all, &args.field, &queries, &params)?
    };
    for (i, mut hits) in results.into_iter().enumerate() {
        hits.retain(|h| Some(&h.id) != exclude.as_ref());
        hits.truncate(args.k);
        if args.json {
            print_json_hits(i, &hits);
        } else {
            println!("query {i}:");
            for line in table_lines(&all, &hits, &columns)? {
                println!("{line}");
            }
        }
    }
    Ok(())
}

fn run_search(
    args: &SearchArgs,
    collection: &Collection,
    query_field: &str,
    queries: &[Vec<f32>],
    params: SearchParams,
) -> Result<Vec<Vec<Hit>>> {
    let fit_filter = super::parse_filter(args.fit.fit_filter.as_deref(), "--fit-filter")?;
    let shift = ShiftOptions {
        lambda: args.shift.unwrap_or(0.0),
        query_field,
        pair: args.pair.as_deref(),
        fit_filter: fit_filter.as_ref(),
    };
    Ok(medvec_query::jobs::search(
        collection,
        &args.field,
        queries,
        params,
        &shift,
    )?)
}

/// The same collection in the other stores given with --store.
fn open_shards(args: &SearchArgs) -> Result<Vec<std::sync::Arc<Collection>>> {
    args.shards
        .iter()
        .map(|path| {
            let store = Store::open_read_only(path)?;
            store
                .collection(&args.collection)
                .with_context(|| format!("--store {}", path.display()))
        })
        .collect()
}

/// The query vectors, the record to leave out of the hits (--like), and the field whose kind of
/// vector they are.
struct Queries {
    vectors: Vec<Vec<f32>>,
    exclude: Option<String>,
    field: String,
}

fn read_queries(
    args: &SearchArgs,
    collection: &Collection,
    shards: &[std::sync::Arc<Collection>],
) -> Result<Queries> {
    let field = args.query_modality.as_ref().unwrap_or(&args.field).clone();
    let plain = |vectors| Queries {
        vectors,
        exclude: None,
        field: field.clone(),
    };
    if let Some(text) = &args.vector {
        let vector = text
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<f32>()
                    .with_context(|| format!("--vector: `{}` is not a number", x.trim()))
            })
            .collect::<Result<Vec<f32>>>()?;
        return Ok(plain(vec![vector]));
    }
    if let Some(id) = &args.like {
        let all: Vec<&Collection> = std::iter::once(collection)
            .chain(shards.iter().map(|c| &**c))
            .collect();
        let record = super::hits::find_record(&all, id)?
            .with_context(|| format!("--like: no record with id `{id}`"))?;
        let vector = record
            .vectors
            .get(&field)
            .with_context(|| format!("--like: record `{id}` has no `{field}` vector"))?;
        return Ok(Queries {
            vectors: vec![vector.clone()],
            exclude: Some(id.clone()),
            field,
        });
    }
    if let Some(path) = &args.queries {
        return Ok(plain(medvec_ingest::load::read_matrix(path)?));
    }
    if !args.image.is_empty() || !args.text.is_empty() {
        return encode_queries(args, collection);
    }
    bail!("give a query: --vector, --like, --queries, --image or --text")
}

/// --image / --text: encoded with the model recorded for the query field (or --model).
fn encode_queries(args: &SearchArgs, collection: &Collection) -> Result<Queries> {
    let modality = if args.image.is_empty() {
        Modality::Text
    } else {
        Modality::Image
    };
    let field = match (&args.query_modality, &args.model) {
        (Some(field), _) => field.clone(),
        (None, Some(_)) => args.field.clone(),
        (None, None) => models::field_for(collection, modality, &args.field)?,
    };
    let runtime = Runtime::load(&RuntimeOptions::default())?;
    let encoder = match &args.model {
        Some(dir) => {
            let options = EncoderOptions {
                intra_threads: args.threads,
                jpeg_draft: args.jpeg_draft,
                dicom_window: args.window.unwrap_or_default(),
                model_file: args.model_file.clone(),
                ..EncoderOptions::default()
            };
            QueryEncoder::open(&runtime, modality, dir, &options)?
        }
        None => QueryEncoder::recorded(&runtime, collection, &field, args.threads)?,
    };
    let vectors = match modality {
        Modality::Image => encoder.encode_images(&args.image)?,
        Modality::Text => encoder.encode_texts(&args.text)?,
    };
    Ok(Queries {
        vectors,
        exclude: None,
        field,
    })
}

fn print_json_hits(query: usize, hits: &[Hit]) {
    let hits: Vec<_> = hits
        .iter()
        .map(|h| json!({"id": h.id, "score": h.score}))
        .collect();
    print_json(&json!({"query": query, "hits": hits}));
}
