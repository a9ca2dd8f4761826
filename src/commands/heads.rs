//! train, heads, classify, eval, sweep: the paper's fusion heads over stored vectors.

use super::print_json;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use medvec_query::heads::{HeadSpec, SplitFractions, TrainConfig};
use medvec_query::training::{
    classify, train_head, LambdaResult, Prediction, SavedHead, SplitSource, TrainRequest,
};
use medvec_store::Store;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum HeadKind {
    Early,
    Late,
}

/// Options shared by train and sweep.
#[derive(Debug, Args)]
struct TrainOptions {
    store: PathBuf,
    collection: String,
    /// early or late fusion (the paper's architectures).
    #[arg(long, value_enum)]
    head: HeadKind,
    /// Payload field holding the class label.
    #[arg(long)]
    label: String,
    /// IMAGE_FIELD,TEXT_FIELD (default: the collection's two vector fields).
    #[arg(long)]
    fields: Option<String>,
    /// Payload column with train / val / test (otherwise a stratified --split).
    #[arg(long, conflicts_with = "split")]
    split_column: Option<String>,
    /// Fractions TRAIN,VAL,TEST of a seeded stratified split.
    #[arg(long, default_value = "0.7,0.15,0.15")]
    split: String,
    /// Maximum epochs (the epoch is chosen on validation).
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Dropout (the paper's reference runs used 0).
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl TrainOptions {
    fn request(
        &self,
        collection: &medvec_store::Collection,
        lambdas: Vec<f32>,
    ) -> Result<TrainRequest> {
        let (image, text) = super::align::field_pair(collection, self.fields.as_deref())?;
        let spec = match self.head {
            HeadKind::Early => HeadSpec::early(),
            HeadKind::Late => HeadSpec::late(),
        }
        .with_dropout(self.dropout);
        let split = match &self.split_column {
            Some(column) => SplitSource::Column(column.clone()),
            None => SplitSource::Fractions(parse_fractions(&self.split)?, self.seed),
        };
        let config = TrainConfig {
            max_epochs: self.epochs,
            seed: self.seed,
            ..TrainConfig::default()
        };
        Ok(TrainRequest {
            spec,
            label_field: self.label.clone(),
            image_field: image,
            text_field: text,
            split,
            lambdas,
            config,
        })
    }
}

fn parse_fractions(text: &str) -> Result<SplitFractions> {
    let parts: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .context("--split: expected TRAIN,VAL,TEST fractions")?;
    let [train, val, test] = parts.as_slice() else {
        bail!("--split: expected three fractions, e.g. 0.7,0.15,0.15")
    };
    Ok(SplitFractions {
        train: *train,
        val: *val,
        test: *test,
    })
}

/// λ grid from, to, step (inclusive), rounded to avoid 0.30000000000000004.
fn grid(from: f32, to: f32, step: f32) -> Result<Vec<f32>> {
    if step <= 0.0 || to < from {
        bail!("λ grid: need --from <= --to and a positive --step");
    }
    let n = ((to - from) / step + 1e-4).floor() as usize;
    Ok((0..=n)
        .map(|i| ((from + i as f32 * step) * 1000.0).round() / 1000.0)
        .collect())
}

/// Train an early or late fusion head on stored vectors and save it in the collection.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  medvec train ./clinic ham10000 --head late --label dx --split-column split --shift auto --name dx-late"
)]
pub struct TrainArgs {
    #[command(flatten)]
    options: TrainOptions,
    /// λ of the alignment shift, or `auto` to choose it on validation from −1..1 step 0.1.
    #[arg(long, default_value = "0", allow_hyphen_values = true)]
    shift: String,
    /// Name to save the head under.
    #[arg(long)]
    name: String,
    #[arg(long)]
    json: bool,
}

pub fn train(args: TrainArgs) -> Result<()> {
    let store = Store::open(&args.options.store)?;
    let collection = store.collection(&args.options.collection)?;
    let lambdas = match args.shift.as_str() {
        "auto" => grid(-1.0, 1.0, 0.1)?,
        text => vec![text.parse::<f32>().context("--shift: a number or `auto`")?],
    };
    let saved = train_head(&collection, &args.options.request(&collection, lambdas)?)?;
    saved.save(&collection, &args.name)?;
    if args.json {
        print_json(&json!({"name": args.name, "meta": saved.meta, "curve": saved.curve}));
    } else {
        print_summary(&args.name, &saved);
    }
    Ok(())
}

fn print_summary(name: &str, saved: &SavedHead) {
    let m = &saved.meta;
    println!(
        "saved head `{name}`: {} fusion on {}+{}, label `{}` ({} classes), λ = {}",
        m.fusion,
        m.image_field,
        m.text_field,
        m.label_field,
        m.classes.len(),
        m.lambda
    );
    println!(
        "  rows train/val/test {}/{}/{}, best epoch {}, {} parameters, {:.3} s/epoch",
        m.rows[0], m.rows[1], m.rows[2], m.best_epoch, m.params, m.seconds_per_epoch
    );
    println!("  validation macro-F1 {:.4}", m.val_macro_f1);
    if let Some(t) = &m.test {
        println!(
            "  test: accuracy {:.4}, macro-F1 {:.4}, balanced accuracy {:.4}",
            t.accuracy, t.macro_f1, t.balanced_accuracy
        );
    }
}

/// Train one head per λ and report validation and test macro-F1 (the paper's Figures 4–6).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  medvec sweep ./clinic ham10000 --head early --label dx --split-column split --from -1 --to 1 --step 0.25"
)]
pub struct SweepArgs {
    #[command(flatten)]
    options: TrainOptions,
    #[arg(long, default_value_t = -1.0, allow_hyphen_values = true)]
    from: f32,
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    to: f32,
    #[arg(long, default_value_t = 0.1)]
    step: f32,
    #[arg(long)]
    json: bool,
}

pub fn sweep(args: SweepArgs) -> Result<()> {
    let store = Store::open_read_only(&args.options.store)?;
    let collection = store.collection(&args.options.collection)?;
    let saved = train_head(
        &collection,
        &args
            .options
            .request(&collection, grid(args.from, args.to, args.step)?)?,
    )?;
    if args.json {
        print_json(&json!({"chosen_lambda": saved.meta.lambda, "curve": saved.curve}));
        return Ok(());
    }
    println!("{:>7}  {:>10}  {:>10}", "λ", "val F1", "test F1");
    for LambdaResult {
        lambda,
        val_macro_f1,
        test_macro_f1,
        ..
    } in &saved.curve
    {
        let mark = if *lambda == saved.meta.lambda {
            "  ← chosen on validation"
        } else {
            ""
        };
        println!(
            "{lambda:>7.2}  {val_macro_f1:>10.4}  {:>10.4}{mark}",
            test_macro_f1.unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

/// List the heads saved in a collection, with their metrics.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  medvec heads ./clinic ham10000 --json")]
pub struct HeadsArgs {
    store: PathBuf,
    collection: String,
    #[arg(long)]
    json: bool,
}

pub fn heads(args: HeadsArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let collection = store.collection(&args.collection)?;
    for name in collection.list_heads()? {
        let saved = SavedHead::load(&collection, &name)?;
        if args.json {
            print_json(&json!({"name": name, "meta": saved.meta}));
        } else {
            print_summary(&name, &saved);
        }
    }
    Ok(())
}

/// Classify stored records with a saved head, streaming id, class and probabilities.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  medvec classify ./clinic ham10000 --head dx-late --filter 'split = \"test\"' --out preds.csv"
)]
pub struct ClassifyArgs {
    store: PathBuf,
    collection: String,
    /// Name of the saved head.
    #[arg(long)]
    head: String,
    /// Only records matching this filter.
    #[arg(long)]
    filter: Option<String>,
    /// Output file, .csv or .jsonl (default: CSV on standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Records per inference batch (bounds memory).
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// Accepted for uniformity; use --out FILE.jsonl for JSON lines.
    #[arg(long)]
    json: bool,
}

pub fn classify_command(args: ClassifyArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let collection = store.collection(&args.collection)?;
    let saved = SavedHead::load(&collection, &args.head)?;
    let filter = super::parse_filter(args.filter.as_deref(), "--filter")?;
    let jsonl = args.json
        || args
            .out
            .as_ref()
            .is_some_and(|p| p.extension().is_some_and(|e| e == "jsonl"));
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("{}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    if !jsonl {
        let probs: Vec<String> = saved
            .meta
            .classes
            .iter()
            .map(|c| format!("p_{c}"))
            .collect();
        writeln!(out, "id,predicted,{}", probs.join(","))?;
    }
    let classes = saved.meta.classes.clone();
    classify(
        &collection,
        &saved,
        filter.as_ref(),
        args.batch.max(1),
        |p| {
            write_prediction(&mut out, &p, &classes, jsonl)
                .map_err(|e| medvec_query::QueryError::Invalid(e.to_string()))
        },
    )?;
    out.flush()?;
    Ok(())
}

fn write_prediction(
    out: &mut dyn Write,
    p: &Prediction,
    classes: &[String],
    jsonl: bool,
) -> std::io::Result<()> {
    if jsonl {
        let probabilities: serde_json::Map<String, serde_json::Value> = classes
            .iter()
            .cloned()
            .zip(p.probabilities.iter().map(|x| json!(x)))
            .collect();
        writeln!(
            out,
            "{}",
            json!({"id": p.id, "predicted": p.class, "probabilities": probabilities})
        )
    } else {
        let probs: Vec<String> = p.probabilities.iter().map(|x| format!("{x:.6}")).collect();
        writeln!(
            out,
            "{},{},{}",
            csv_cell(&p.id),
            csv_cell(&p.class),
            probs.join(",")
        )
    }
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Report a saved head's metrics against the stored labels of the records matching a filter.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  medvec eval ./clinic ham10000 --head dx-late --filter 'split = \"test\"' --json"
)]
pub struct EvalArgs {
    store: PathBuf,
    collection: String,
    #[arg(long)]
    head: String,
    #[arg(long)]
    filter: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let collection = store.collection(&args.collection)?;
    let saved = SavedHead::load(&collection, &args.head)?;
    let filter = super::parse_filter(args.filter.as_deref(), "--filter")?;
    let classes = &saved.meta.classes;
    let (mut truth, mut predicted) = (Vec::new(), Vec::new());
    classify(&collection, &saved, filter.as_ref(), 4096, |p| {
        if let Some(label) = p
            .truth
            .as_ref()
            .and_then(|t| classes.iter().position(|c| c == t))
        {
            truth.push(label);
            predicted.push(classes.iter().position(|c| *c == p.class).unwrap_or(0));
        }
        Ok(())
    })?;
    if truth.is_empty() {
        bail!(
            "no records with a known `{}` label matched",
            saved.meta.label_field
        );
    }
    let report = medvec_query::heads::metrics::ClassificationReport::new(&truth, &predicted)?;
    if args.json {
        print_json(&json!({
            "rows": truth.len(), "accuracy": report.accuracy, "macro_f1": report.macro_f1,
            "balanced_accuracy": report.balanced_accuracy, "classes": classes,
            "precision": report.per_class.precision, "recall": report.per_class.recall, "f1": report.per_class.f1,
            "support": report.per_class.support,
            "confusion": report.confusion.counts.outer_iter().map(|row| row.to_vec()).collect::<Vec<_>>(),
        }));
    } else {
        println!(
            "{} rows: accuracy {:.4}, macro-F1 {:.4}, balanced accuracy {:.4}",
            truth.len(),
            report.accuracy,
            report.macro_f1,
            report.balanced_accuracy
        );
        println!(
            "{:<12} {:>9} {:>9} {:>9} {:>8}",
            "class", "precision", "recall", "f1", "support"
        );
        for (k, &label) in report.per_class.labels.iter().enumerate() {
            let name = classes.get(label).map_or("?", String::as_str);
            println!(
                "{name:<12} {:>9.4} {:>9.4} {:>9.4} {:>8}",
                report.per_class.precision[k],
                report.per_class.recall[k],
                report.per_class.f1[k],
                report.per_class.support[k]
            );
        }
    }
    Ok(())
}
