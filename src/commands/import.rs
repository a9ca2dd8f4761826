//! import and export of precomputed embeddings.

use super::print_json;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use medvec_ingest::columnar::export_parquet;
use medvec_ingest::import::ImportSource;
use medvec_ingest::load::{export_collection, import_into};
use medvec_store::{CollectionOptions, CollectionStats, Store};
use serde_json::json;
use std::path::PathBuf;

/// Load precomputed embeddings (.npy + CSV table, the paper's CSV layout, or JSONL).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  medvec import ./clinic ham10000 --npy image=img.npy --npy text=txt.npy --table meta.csv\n  medvec import ./clinic ham10000 --csv embeddings.csv --id-column ID \\\n      --vector-prefix image=image_embedding_ --vector-prefix text=text_embedding_\n  medvec import ./clinic ham10000 --jsonl cases.jsonl"
)]
pub struct ImportArgs {
    store: PathBuf,
    collection: String,
    /// FIELD=FILE.npy: row i of the file is record i's vector for FIELD (float32 or float64, C order).
    #[arg(long = "npy", value_name = "FIELD=FILE")]
    npy: Vec<String>,
    /// CSV table paired row by row with the .npy files: an id column and payload columns.
    #[arg(long, requires = "npy")]
    table: Option<PathBuf>,
    /// One CSV holding ids, payload and vector columns (PREFIX0, PREFIX1, ...).
    #[arg(long, conflicts_with_all = ["npy", "jsonl"])]
    csv: Option<PathBuf>,
    /// FIELD=PREFIX: vector columns of FIELD in --csv are PREFIX0..PREFIX{dim-1}.
    #[arg(long = "vector-prefix", value_name = "FIELD=PREFIX")]
    vector_prefix: Vec<String>,
    /// One JSON object per line: {"id": ..., "<vector field>": [...], "<payload field>": ...}.
    #[arg(long, conflicts_with = "npy")]
    jsonl: Option<PathBuf>,
    /// Name of the id column (or JSON key).
    #[arg(long, default_value = "id")]
    id_column: String,
    /// Records per logged batch.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Flush the unflushed tail into a segment every N records (default 65536).
    #[arg(long)]
    flush_rows: Option<usize>,
    /// After each batch is durable, print `acknowledged N` on stderr (for scripts and the crash tests).
    #[arg(long)]
    progress_lines: bool,
    /// Then merge the whole collection into one segment, as `medvec compact` does. An import
    /// already ends with one graph over its own rows (up to 1,048,576 per segment); this also
    /// folds in the segments earlier imports and writes left, and drops deleted rows.
    #[arg(long)]
    compact: bool,
    #[arg(long)]
    json: bool,
}

pub fn import(args: ImportArgs) -> Result<()> {
    let source = import_source(&args)?;
    let mut options = CollectionOptions::bulk();
    options.flush_rows = args.flush_rows.unwrap_or(options.flush_rows).max(1);
    let store = Store::open_with(&args.store, options)?;
    let collection = store.collection(&args.collection)?;
    let bar = ProgressBar::hidden();
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}")
            .expect("valid template"),
    );
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    let imported = import_into(&collection, &source, args.batch.max(1), |done, total| {
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(done);
        if args.progress_lines {
            super::acknowledge(done);
        }
    });
    bar.finish_and_clear();
    let summary = match imported {
        Ok(summary) => summary,
        Err(error) => {
            // The batches stored before the error stay stored; give them their graphs too,
            // rather than leave them to exact scans until some later write.
            let _ = store.close();
            return Err(error.into());
        }
    };
    let pending = collection.stats();
    let graphs_to_build = pending.segments_awaiting_graphs > 0 || pending.unflushed > 0;
    if graphs_to_build && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // The graphs are built after the last row is read, in one pass that can take minutes
        // at millions of rows: say so rather than look stuck.
        eprintln!("building the HNSW graphs over the imported records...");
    }
    if args.compact && compaction_would_change_anything(&collection.stats()) {
        collection.compact()?;
    }
    store.close()?;
    // After the closing flush and its merges: how many segments, and how many rows the
    // automatic merges rewrote on the way (write amplification).
    let stats = collection.stats();
    if args.json {
        print_json(&json!({
            "imported": summary.records,
            "batches": summary.batches,
            "seconds": summary.seconds,
            "segments": stats.segments,
            "merged_rows": stats.merged_rows,
        }));
    } else {
        println!(
            "imported {} records in {:.2}s ({} segments; merges rewrote {} rows)",
            summary.records, summary.seconds, stats.segments, stats.merged_rows
        );
    }
    Ok(())
}

/// Whether compacting would change anything: the rows are in (or, once the tail is flushed,
/// will be in) more than one segment, or deleted rows wait to be dropped. A store already in one
/// clean segment is not rewritten.
fn compaction_would_change_anything(stats: &CollectionStats) -> bool {
    stats.segments + usize::from(stats.unflushed > 0) > 1 || stats.deleted_rows > 0
}

fn split_pair(text: &str, flag: &str) -> Result<(String, String)> {
    let (left, right) = text
        .split_once('=')
        .with_context(|| format!("{flag} `{text}`: expected FIELD=VALUE"))?;
    Ok((left.to_string(), right.to_string()))
}

fn import_source(args: &ImportArgs) -> Result<ImportSource> {
    if !args.npy.is_empty() {
        let table = args
            .table
            .clone()
            .context("--npy needs --table meta.csv (ids and payload)")?;
        let vectors = args
            .npy
            .iter()
            .map(|s| split_pair(s, "--npy").map(|(f, p)| (f, PathBuf::from(p))))
            .collect::<Result<_>>()?;
        return Ok(ImportSource::Npy {
            vectors,
            table,
            id_column: args.id_column.clone(),
        });
    }
    if let Some(path) = &args.csv {
        let prefixes = args
            .vector_prefix
            .iter()
            .map(|s| split_pair(s, "--vector-prefix"))
            .collect::<Result<_>>()?;
        return Ok(ImportSource::Csv {
            path: path.clone(),
            id_column: args.id_column.clone(),
            prefixes,
        });
    }
    if let Some(path) = &args.jsonl {
        return Ok(ImportSource::Jsonl {
            path: path.clone(),
            id_field: args.id_column.clone(),
        });
    }
    bail!("give an input: --npy FIELD=FILE --table meta.csv, --csv FILE, or --jsonl FILE")
}

/// Write one vector field to .npy and the ids and payload to CSV, in stored order.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  medvec export ./clinic ham10000 --parquet ham10000.parquet\n  medvec export ./clinic ham10000 --field image --npy image.npy --table meta.csv\n  python -c 'import numpy, pandas; print(numpy.load(\"image.npy\").shape, pandas.read_csv(\"meta.csv\").shape)'"
)]
pub struct ExportArgs {
    store: PathBuf,
    collection: String,
    /// Vector field to write to --npy.
    #[arg(long, requires = "npy")]
    field: Option<String>,
    /// Output .npy (float32, rows in stored order; rows lacking the field are zeros).
    #[arg(long, requires = "table")]
    npy: Option<PathBuf>,
    /// Output CSV: id, payload columns, and has_<field> flags.
    #[arg(long, required_unless_present = "parquet")]
    table: Option<PathBuf>,
    /// Output Apache Parquet: id, typed payload columns and every vector field as a
    /// FixedSizeList<Float32> column (nulls where missing), for Spark, Dask, DuckDB, pandas...
    #[arg(long, conflicts_with_all = ["table", "npy", "field"])]
    parquet: Option<PathBuf>,
    /// Rows per Parquet row group (bounds memory while writing).
    #[arg(long, default_value_t = medvec_ingest::columnar::DEFAULT_ROWS_PER_GROUP)]
    row_group: usize,
    #[arg(long)]
    json: bool,
}

pub fn export(args: ExportArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let collection = store.collection(&args.collection)?;
    let rows = match (&args.parquet, &args.table) {
        (Some(path), _) => export_parquet(&collection, path, args.row_group)?,
        (None, Some(table)) => {
            let vectors = args.field.as_deref().zip(args.npy.as_deref());
            export_collection(&collection, vectors, table)?
        }
        (None, None) => bail!("give --table FILE.csv [--field F --npy FILE] or --parquet FILE"),
    };
    if args.json {
        print_json(&json!({"exported": rows}));
    } else {
        println!("exported {rows} records");
    }
    Ok(())
}
