//! Parameter counts of the paper's configurations (method.md §4).

mod heads_common;

use heads_common::clusters;
use medvec_query::heads::{train, HeadSpec, Inputs, Labelled, TrainConfig};

const PAPER: [((usize, usize), usize, usize); 2] = [
    ((512, 512), 131_585, 66_049),
    ((4096, 768), 623_105, 311_809),
];

#[test]
fn spec_param_counts_match_the_paper() {
    for (dims, early, late) in PAPER {
        assert_eq!(
            HeadSpec::early().param_count(&[dims.0, dims.1], 2),
            early,
            "{dims:?} early"
        );
        assert_eq!(
            HeadSpec::late().param_count(&[dims.0, dims.1], 2),
            late,
            "{dims:?} late"
        );
    }
}

#[test]
fn trained_heads_hold_exactly_the_paper_parameter_counts() {
    for (dims, early, late) in PAPER {
        let data = clusters(&[6, 6], dims, 1.0, 1);
        let set = Labelled::new(
            Inputs::new(data.text.view(), data.image.view()).unwrap(),
            &data.labels,
        )
        .unwrap();
        let config = TrainConfig {
            max_epochs: 1,
            ..TrainConfig::default()
        };
        for (spec, want) in [(HeadSpec::early(), early), (HeadSpec::late(), late)] {
            let head = train(&spec, &set, &set, &config).unwrap();
            assert_eq!(head.param_count(), want, "{spec:?} {dims:?}");
            // Stored numbers = parameters + BatchNorm running mean and variance.
            let branches = if spec == HeadSpec::early() { 1 } else { 2 };
            assert_eq!(head.weights().len(), want + 2 * spec.hidden * branches);
        }
    }
}

#[test]
fn multiclass_heads_have_one_logit_per_class() {
    // 7 classes (HAM10000): output layer 128×7 + 7 instead of 128×1 + 1.
    let binary = HeadSpec::early().param_count(&[512, 512], 2);
    assert_eq!(
        HeadSpec::early().param_count(&[512, 512], 7),
        binary - 129 + 128 * 7 + 7
    );
}
