//! train, sweep, heads, eval, export-head: the paper's fusion heads over stored vectors
//! (`classify` is in its own module).

use super::print_json;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use medvec_query::heads::binary::ThresholdRule;
use medvec_query::heads::metrics::ClassificationReport;
use medvec_query::heads::{KnnConfig, KnnView, KnnWeighting, SplitFractions};
use medvec_query::jobs::{
    auto_lambdas, evaluate_all, evaluate_intervals, lambda_grid, trained_json, HeadChoice,
    TrainSettings,
};
use medvec_query::repeat::{cross_validate, repeat_training, Repeated, Spread};
use medvec_query::threshold::choose_threshold;
use medvec_query::training::MissingField;
use medvec_query::training::{HeadMeta, LambdaProgress, LambdaResult, SavedHead, SplitSource};
use medvec_store::{Collection, Store};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum HeadKind {
    Early,
    Late,
    /// k nearest training cases (cosine summed over the fields); nothing to train but λ.
    Knn,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Weighting {
    Uniform,
    Distance,
}

/// Options shared by train and sweep.
#[derive(Debug, Args)]
struct TrainOptions {
    store: PathBuf,
    collection: String,
    /// early or late fusion (the paper's architectures), or knn.
    #[arg(long, value_enum)]
    head: HeadKind,
    /// Neighbours of a knn head.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Vote weighting of a knn head: one vote each, or 1 / cosine distance.
    #[arg(long, value_enum, default_value = "uniform")]
    knn_weighting: Weighting,
    /// Payload field holding the class label.
    #[arg(long)]
    label: String,
    /// The vector fields the head reads, comma-separated, in order: one field (a single-modality
    /// baseline), two (IMAGE,TEXT, the paper's fusion) or more. Early fusion concatenates them,
    /// late fusion has one branch per field, knn sums their cosines. Default: every vector field
    /// of the collection.
    #[arg(long, value_delimiter = ',')]
    fields: Option<Vec<String>>,
    /// A,B: the pair of equal-width fields the alignment shift moves towards each other
    /// (Δ = mean(A) − mean(B), A the image's part). Default: the two fields of a two-field head;
    /// with one field or more than two, --shift other than 0 needs it.
    #[arg(long, value_name = "A,B")]
    shift_pair: Option<String>,
    /// Payload column with train / val / test (otherwise a stratified --split).
    #[arg(long, conflicts_with = "split")]
    split_column: Option<String>,
    /// Keep all rows sharing a value of this payload column (a lesion, a patient, DICOM's
    /// patient_key) in one part of the --split, stratified by label as far as groups allow.
    #[arg(long, conflicts_with = "split_column")]
    group_column: Option<String>,
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
    /// Repeat the split and the training over this many seeds (--seed, --seed + 1, ...) and
    /// report mean ± sd and 95% bootstrap intervals of the test metrics, and whether the chosen
    /// λ beats λ = 0 by more than run-to-run noise (paired over the seeds).
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// K-fold cross-validation instead of one split: each fold is the test part once, the other
    /// folds minus a validation share (--split's val / (train + val)) train; groups stay whole
    /// with --group-column. Reported as --seeds is.
    #[arg(long, value_name = "K", conflicts_with_all = ["split_column", "seeds"])]
    cv: Option<usize>,
}

impl TrainOptions {
    /// The library's settings for these flags.
    fn settings(&self) -> Result<TrainSettings> {
        let shift_pair = match self.shift_pair.as_deref() {
            Some(text) => {
                let (a, b) = text
                    .split_once(',')
                    .filter(|(_, b)| !b.contains(','))
                    .context("--shift-pair: expected two fields, A,B")?;
                Some([a.to_string(), b.to_string()])
            }
            None => None,
        };
        let head = match self.head {
            HeadKind::Early => HeadChoice::Early,
            HeadKind::Late => HeadChoice::Late,
            HeadKind::Knn => HeadChoice::Knn(KnnConfig {
                k: self.k,
                weighting: match self.knn_weighting {
                    Weighting::Uniform => KnnWeighting::Uniform,
                    Weighting::Distance => KnnWeighting::Distance,
                },
                view: KnnView::Both,
            }),
        };
        let split = match (&self.split_column, &self.group_column) {
            (Some(column), _) => SplitSource::Column(column.clone()),
            (None, Some(group)) => SplitSource::Grouped {
                column: group.clone(),
                fractions: parse_fractions(&self.split)?,
                seed: self.seed,
            },
            (None, None) => SplitSource::Fractions(parse_fractions(&self.split)?, self.seed),
        };
        Ok(TrainSettings {
            head,
            label: self.label.clone(),
            fields: self.fields.clone(),
            shift_pair,
            split,
            max_epochs: self.epochs,
            dropout: self.dropout,
            seed: self.seed,
        })
    }

    /// Trains the chosen kind of head, showing the λ being trained on a terminal.
    fn train(&self, collection: &Collection, lambdas: Vec<f32>) -> Result<SavedHead> {
        let bar = lambda_bar(lambdas.len());
        let mut progress = |p: LambdaProgress| {
            bar.set_position(p.index as u64);
            bar.set_message(format!("training λ = {}", p.lambda));
        };
        let saved = self.settings()?.train(collection, lambdas, &mut progress)?;
        bar.finish_and_clear();
        Ok(saved)
    }

    /// With --seeds > 1, training repeated over the seeds (the first seed's head, and the
    /// report); otherwise one training.
    fn train_repeated(
        &self,
        collection: &Collection,
        lambdas: Vec<f32>,
    ) -> Result<(SavedHead, Option<Repeated>)> {
        if self.seeds <= 1 && self.cv.is_none() {
            return Ok((self.train(collection, lambdas)?, None));
        }
        let bar = lambda_bar(lambdas.len() * self.cv.unwrap_or(self.seeds));
        let mut done = 0u64;
        let mut progress = |p: LambdaProgress| {
            done += 1;
            bar.set_position(done);
            bar.set_message(format!("training λ = {}", p.lambda));
        };
        let settings = self.settings()?;
        let (report, saved) = match self.cv {
            Some(folds) => {
                let f = parse_fractions(&self.split)?;
                let share = (folds, f.val / (f.train + f.val));
                let group = self.group_column.as_deref();
                cross_validate(collection, &settings, &lambdas, share, group, &mut progress)?
            }
            None => repeat_training(collection, &settings, &lambdas, self.seeds, &mut progress)?,
        };
        bar.finish_and_clear();
        Ok((saved, Some(report)))
    }
}

/// A bar over the λ grid on standard error, hidden when that is not a terminal.
fn lambda_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::hidden();
    bar.set_length(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ({elapsed})")
            .expect("valid template"),
    );
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    bar
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

/// Train an early, late or kNN head on stored vectors and save it in the collection.
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
    /// For a two-class label: choose the decision threshold on validation, `youden` (best
    /// sensitivity + specificity) or `sensitivity=X` (the best specificity with sensitivity at
    /// least X). It is saved with the head and `classify` uses it.
    #[arg(long, value_name = "RULE")]
    threshold: Option<String>,
    /// With --threshold: the class whose probability is thresholded (default: the second class
    /// name in sorted order, as for labels 0/1).
    #[arg(long, value_name = "CLASS", requires = "threshold")]
    positive: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn train(args: TrainArgs) -> Result<()> {
    let store = Store::open(&args.options.store)?;
    let collection = store.collection(&args.options.collection)?;
    let lambdas = match args.shift.as_str() {
        "auto" => auto_lambdas(),
        text => vec![text.parse::<f32>().context("--shift: a number or `auto`")?],
    };
    let rule = args
        .threshold
        .as_deref()
        .map(ThresholdRule::parse)
        .transpose()
        .context("--threshold")?;
    if rule.is_some() && args.options.cv.is_some() {
        anyhow::bail!("--threshold: choose it on a validation split, not with --cv");
    }
    let (mut saved, repeated) = args.options.train_repeated(&collection, lambdas)?;
    if let Some(rule) = rule {
        let settings = args.options.settings()?;
        let positive = args.positive.as_deref();
        choose_threshold(&collection, &mut saved, &settings, rule, positive)?;
    }
    saved.save(&collection, &args.name)?;
    let classes = &saved.meta.classes;
    let test = saved.test_report.as_ref();
    if args.json {
        let mut out = trained_json(&args.name, &saved);
        out["repeated"] = json!(repeated);
        print_json(&out);
    } else {
        print_summary(&args.name, &saved.meta);
        if let Some(report) = test {
            print!("  test split, ");
            print_report(saved.meta.rows[2], report, classes);
        }
        if let Some(repeated) = &repeated {
            print_repeated(repeated);
        }
    }
    Ok(())
}

/// The spread over seeds, one line per metric.
fn print_repeated(r: &Repeated) {
    println!(
        "over {} seeds (test split; 95% bootstrap interval of the mean):",
        r.runs.len()
    );
    let line = |name: &str, s: &Spread| {
        println!(
            "  {name:<22} {:.4} ± {:.4}  [{:.4}, {:.4}]",
            s.mean, s.sd, s.low, s.high
        )
    };
    line("macro-F1", &r.macro_f1);
    line("accuracy", &r.accuracy);
    line("balanced accuracy", &r.balanced_accuracy);
    line("gain over λ = 0", &r.gain_over_unshifted);
    let lambdas: Vec<String> = r.runs.iter().map(|run| run.lambda.to_string()).collect();
    println!(
        "  chosen λ per run: {}; the shift {} λ = 0 by more than the interval",
        lambdas.join(", "),
        if r.shift_beats_unshifted {
            "beats"
        } else {
            "does not beat"
        }
    );
}

/// The report as text: headline metrics, per-class table, confusion matrix (rows: truth).
fn print_report(rows: usize, report: &ClassificationReport, classes: &[String]) {
    println!(
        "{rows} rows: accuracy {:.4}, macro-F1 {:.4}, balanced accuracy {:.4}",
        report.accuracy, report.macro_f1, report.balanced_accuracy
    );
    let name = |label: usize| classes.get(label).map_or("?", String::as_str);
    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>8}",
        "class", "precision", "recall", "f1", "support"
    );
    for (k, &label) in report.per_class.labels.iter().enumerate() {
        println!(
            "{:<12} {:>9.4} {:>9.4} {:>9.4} {:>8}",
            name(label),
            report.per_class.precision[k],
            report.per_class.recall[k],
            report.per_class.f1[k],
            report.per_class.support[k]
        );
    }
    let labels = &report.confusion.labels;
    let header: Vec<String> = labels.iter().map(|&l| format!("{:>7}", name(l))).collect();
    println!(
        "confusion (rows: recorded, columns: predicted)\n{:<12}{}",
        "",
        header.join("")
    );
    for (i, row) in report.confusion.counts.outer_iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|n| format!("{n:>7}")).collect();
        println!("{:<12}{}", name(labels[i]), cells.join(""));
    }
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
fn either_of(fields: &[String]) -> String {
    let quoted: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn print_summary(name: &str, m: &HeadMeta) {
    println!(
        "saved head `{name}`: {} fusion on {}, label `{}` ({} classes), λ = {}",
        m.fusion,
        m.fields.fields.join("+"),
        m.label_field,
        m.classes.len(),
        m.lambda
    );
    match &m.knn {
        Some(knn) => println!(
            "  rows train/val/test {}/{}/{}, k = {}, {:?} votes (training cases read from the \
             collection by id)",
            m.rows[0], m.rows[1], m.rows[2], knn.k, knn.weighting
        ),
        None => println!(
            "  rows train/val/test {}/{}/{}, best epoch {}, {} parameters, {:.3} s/epoch",
            m.rows[0], m.rows[1], m.rows[2], m.best_epoch, m.params, m.seconds_per_epoch
        ),
    }
    if m.missing_field_rows > 0 {
        println!(
            "  {} labelled records left out: they lack {}",
            m.missing_field_rows,
            either_of(&m.fields.fields)
        );
    }
    println!("  validation macro-F1 {:.4}", m.val_macro_f1);
    if let Some(t) = &m.threshold {
        println!(
            "  threshold {:.4} on P(`{}`) by {}: validation sensitivity {:.4}, specificity {:.4}",
            t.value, t.positive, t.rule, t.val_sensitivity, t.val_specificity
        );
    }
    if let Some(t) = &m.test {
        println!(
            "  inference {:.0} rows/s on the test split, model {} bytes",
            t.rows_per_second, m.model_bytes
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
    /// Write the macro-F1-vs-λ chart to this SVG file, and the PCA-2 scatter of both
    /// modalities before/after the chosen shift next to it (FILE.svg → FILE.pca.svg).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn sweep(args: SweepArgs) -> Result<()> {
    let store = Store::open_read_only(&args.options.store)?;
    let collection = store.collection(&args.options.collection)?;
    let (saved, repeated) = args
        .options
        .train_repeated(&collection, lambda_grid(args.from, args.to, args.step)?)?;
    if let Some(path) = &args.plot {
        write_plots(&collection, &args.options, &saved, repeated.as_ref(), path)?;
    }
    if args.json {
        print_json(
            &json!({"chosen_lambda": saved.meta.lambda, "curve": saved.curve, "repeated": repeated}),
        );
        return Ok(());
    }
    if let Some(repeated) = &repeated {
        print_bands(repeated);
        print_repeated(repeated);
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

/// The sweep over seeds: mean ± sd of validation and test macro-F1 per λ.
fn print_bands(r: &Repeated) {
    println!(
        "{:>7}  {:>17}  {:>17}",
        "λ", "val F1 (mean±sd)", "test F1 (mean±sd)"
    );
    for band in &r.curve {
        let test = band
            .test_macro_f1
            .map_or("-".to_string(), |t| format!("{:.4}±{:.4}", t.mean, t.sd));
        println!(
            "{:>7.2}  {:>17}  {:>17}",
            band.lambda,
            format!("{:.4}±{:.4}", band.val_macro_f1.mean, band.val_macro_f1.sd),
            test
        );
    }
}

/// Points per modality in the PCA scatter (evenly strided training rows).
const SCATTER_POINTS: usize = 500;

/// The sweep chart at `path` and the PCA scatter at `path` with extension `.pca.svg`.
fn write_plots(
    collection: &Collection,
    options: &TrainOptions,
    saved: &SavedHead,
    repeated: Option<&Repeated>,
    path: &Path,
) -> Result<()> {
    let chart = match repeated {
        Some(r) => medvec_query::plot::sweep_bands_svg(&r.curve, saved.meta.lambda)?,
        None => medvec_query::plot::sweep_chart_svg(&saved.curve, saved.meta.lambda)?,
    };
    std::fs::write(path, chart).with_context(|| format!("{}", path.display()))?;
    let request = options.settings()?.request(collection, Vec::new())?;
    let Some([image, text]) = &request.fields.shift_pair else {
        eprintln!(
            "wrote {} (no PCA panel: the head has no shift pair)",
            path.display()
        );
        return Ok(());
    };
    let scatter = match medvec_query::training::shift_scatter(
        collection,
        &request,
        saved.meta.lambda,
        SCATTER_POINTS,
    ) {
        Ok(scatter) => scatter,
        Err(why @ medvec_query::QueryError::DimensionMismatch { .. }) => {
            eprintln!("wrote {} (no PCA panel: {why})", path.display());
            return Ok(());
        }
        Err(other) => return Err(other.into()),
    };
    let svg = medvec_query::plot::scatter_svg(&scatter, image, text)?;
    let pca_path = path.with_extension("pca.svg");
    std::fs::write(&pca_path, svg).with_context(|| format!("{}", pca_path.display()))?;
    eprintln!("wrote {} and {}", path.display(), pca_path.display());
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
        let meta = SavedHead::load_meta(&collection, &name)?;
        if args.json {
            print_json(&json!({"name": name, "meta": meta}));
        } else {
            print_summary(&name, &meta);
        }
    }
    Ok(())
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
    /// Add 95% bootstrap intervals from this many resamples of the evaluated records.
    #[arg(long, value_name = "N")]
    seeds: Option<usize>,
    /// With --seeds: resample whole groups of this payload column (a lesion, a patient), whose
    /// images are not independent cases.
    #[arg(long, requires = "seeds")]
    group_column: Option<String>,
    /// Seed of the resampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Two-class heads: report sensitivity and specificity at this probability of the positive
    /// class (default: the head's saved threshold, else 0.5).
    #[arg(long, value_name = "P")]
    threshold: Option<f64>,
    /// Records lacking some of the head's fields are left out and counted (`error`), or
    /// evaluated with zero vectors for those fields and counted (`zero`, as `classify --missing
    /// zero` classifies them). The report states which.
    #[arg(long, value_name = "error|zero", default_value = "error")]
    missing: String,
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let collection = store.collection(&args.collection)?;
    let saved = SavedHead::load(&collection, &args.head)?;
    let filter = super::parse_filter(args.filter.as_deref(), "--filter")?;
    if let Some(t) = args.threshold.filter(|t| !(0.0..=1.0).contains(t)) {
        anyhow::bail!("--threshold {t}: a probability, from 0 to 1");
    }
    let missing = MissingField::parse(&args.missing).context("--missing")?;
    let evaluation = evaluate_all(
        &collection,
        &saved,
        filter.as_ref(),
        args.threshold,
        missing,
    )?;
    let (rows, report) = (evaluation.rows, &evaluation.report);
    let classes = &saved.meta.classes;
    let intervals = args
        .seeds
        .map(|n| {
            let group = args.group_column.as_deref();
            let rows = (filter.as_ref(), missing);
            evaluate_intervals(&collection, &saved, rows, group, n, args.seed)
        })
        .transpose()?;
    if args.json {
        let mut out = evaluation.to_json(classes);
        if let Some(intervals) = &intervals {
            out["intervals"] = json!(intervals);
        }
        print_json(&out);
    } else {
        print_report(rows, report, classes);
        if evaluation.missing_field_rows > 0 {
            println!(
                "{} labelled records left out: they lack a field of the head (--missing zero evaluates them with zero vectors)",
                evaluation.missing_field_rows
            );
        }
        if evaluation.zero_filled_rows > 0 {
            println!(
                "{} labelled records evaluated with zero vectors for the fields they lack (--missing zero)",
                evaluation.zero_filled_rows
            );
        }
        if let Some(b) = &evaluation.binary {
            println!(
                "positive class `{}`: ROC-AUC {:.4}, PR-AUC {:.4}, calibration error {:.4} ({} bins); at threshold {:.4} ({}): sensitivity {:.4}, specificity {:.4}",
                b.positive, b.roc_auc, b.pr_auc, b.calibration_error, b.calibration_bins,
                b.threshold, b.threshold_source, b.sensitivity, b.specificity
            );
        }
        if let Some(i) = &intervals {
            let unit = i
                .group_column
                .as_deref()
                .map_or("records".to_string(), |c| format!("`{c}` groups"));
            println!(
                "95% bootstrap intervals ({} resamples of {} {unit}): accuracy [{:.4}, {:.4}], macro-F1 [{:.4}, {:.4}], balanced accuracy [{:.4}, {:.4}]",
                i.resamples, i.units, i.accuracy[0], i.accuracy[1], i.macro_f1[0], i.macro_f1[1],
                i.balanced_accuracy[0], i.balanced_accuracy[1]
            );
        }
    }
    Ok(())
}

/// Write a saved early or late head as an ONNX graph that runs anywhere ONNX Runtime does.
///
/// The graph takes the raw field vectors (inputs named after the head's fields, float32
/// [batch, dim]) and does the L2 normalisation, the alignment shift with the head's Δ and λ,
/// the MLP in inference mode and softmax (sigmoid with both columns for a binary head). Its
/// output `probabilities` has one column per class, in the order of the metadata entry
/// `classes`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  medvec export-head ./clinic ham10000 --head dx-late --onnx dx-late.onnx"
)]
pub struct ExportHeadArgs {
    store: PathBuf,
    collection: String,
    /// Name of the saved head.
    #[arg(long)]
    head: String,
    /// The ONNX file to write (opset 17).
    #[arg(long, value_name = "FILE")]
    onnx: PathBuf,
}

pub fn export_head(args: ExportHeadArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let collection = store.collection(&args.collection)?;
    let saved = SavedHead::load(&collection, &args.head)?;
    let bytes = medvec_query::onnx::export_head(&saved)?;
    let mut file = medvec_ingest::output::create_private(&args.onnx)
        .with_context(|| format!("{}", args.onnx.display()))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("{}", args.onnx.display()))?;
    println!(
        "wrote {} ({} fusion, classes {})",
        args.onnx.display(),
        saved.meta.fusion,
        saved.meta.classes.join(",")
    );
    Ok(())
}
