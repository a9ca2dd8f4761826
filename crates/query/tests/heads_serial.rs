//! TrainedHead body encoding: round trip, and every malformed input is an error.

mod heads_common;

use heads_common::clusters;
use medvec_query::heads::{train, HeadError, HeadSpec, Inputs, Labelled, TrainConfig, TrainedHead};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn head(spec: HeadSpec, classes: &[usize]) -> (TrainedHead, heads_common::Synthetic) {
    let d = clusters(classes, (7, 5), 0.8, 3);
    let set = Labelled::new(
        Inputs::new(d.text.view(), d.image.view()).unwrap(),
        &d.labels,
    )
    .unwrap();
    let config = TrainConfig {
        max_epochs: 3,
        ..TrainConfig::default()
    };
    (train(&spec, &set, &set, &config).unwrap(), d)
}

#[test]
fn round_trip_preserves_everything() {
    for (spec, classes) in [
        (HeadSpec::early(), &[30, 20][..]),
        (HeadSpec::late().with_dropout(0.25), &[20, 20, 10][..]),
    ] {
        let (h, d) = head(spec, classes);
        let back = TrainedHead::from_bytes(&h.to_bytes()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.spec(), spec);
        assert_eq!(back.history(), h.history());
        let inputs = Inputs::new(d.text.view(), d.image.view()).unwrap();
        assert_eq!(
            back.predict_proba(&inputs).unwrap(),
            h.predict_proba(&inputs).unwrap()
        );
        assert_eq!(back.to_bytes(), h.to_bytes());
    }
}

#[test]
fn every_truncation_is_an_error() {
    let (h, _) = head(HeadSpec::late().with_hidden(4), &[10, 10]);
    let bytes = h.to_bytes();
    for len in 0..bytes.len() {
        assert!(
            TrainedHead::from_bytes(&bytes[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        TrainedHead::from_bytes(&longer).unwrap_err(),
        HeadError::Decode("trailing bytes".into())
    );
}

#[test]
fn corrupted_headers_are_errors() {
    let (h, _) = head(HeadSpec::early().with_hidden(4), &[10, 10]);
    let bytes = h.to_bytes();
    let patch = |at: usize, with: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + with.len()].copy_from_slice(with);
        TrainedHead::from_bytes(&b)
    };
    assert!(patch(0, b"XXXX").is_err()); // magic
    assert!(patch(4, &3u32.to_le_bytes()).is_err()); // version
    assert!(patch(8, &7u32.to_le_bytes()).is_err()); // fusion
    assert!(patch(12, &u64::MAX.to_le_bytes()).is_err()); // field count
    assert!(patch(12, &0u64.to_le_bytes()).is_err());
    assert!(patch(12, &3u64.to_le_bytes()).is_err());
    assert!(patch(20, &u64::MAX.to_le_bytes()).is_err()); // field 0's dimension
    assert!(patch(20, &0u64.to_le_bytes()).is_err());
    assert!(patch(36, &(1u64 << 40).to_le_bytes()).is_err()); // hidden
    assert!(patch(44, &1u64.to_le_bytes()).is_err()); // num_classes
    assert!(patch(52, &1.5f32.to_le_bytes()).is_err()); // dropout
    assert!(patch(64, &u64::MAX.to_le_bytes()).is_err()); // history length
                                                          // A NaN weight: the last 4 bytes are the output bias.
    assert_eq!(
        patch(bytes.len() - 4, &f32::NAN.to_le_bytes()).unwrap_err(),
        HeadError::NonFinite("decoded weights")
    );
}

/// One and three fields round-trip, and a head refuses inputs with another number of fields.
#[test]
fn any_number_of_fields_round_trips() {
    let d = clusters(&[20, 20, 10], (7, 5), 0.8, 3);
    let config = TrainConfig {
        max_epochs: 2,
        ..TrainConfig::default()
    };
    let three = vec![d.text.view(), d.image.view(), d.text.view()];
    for fields in [vec![d.image.view()], three] {
        for spec in [HeadSpec::early(), HeadSpec::late()] {
            let inputs = Inputs::from_fields(fields.clone()).unwrap();
            let set = Labelled::new(inputs.clone(), &d.labels).unwrap();
            let h = train(&spec, &set, &set, &config).unwrap();
            assert_eq!(h.dims().len(), fields.len());
            let back = TrainedHead::from_bytes(&h.to_bytes()).unwrap();
            assert_eq!(back, h);
            assert_eq!(back.predict(&inputs).unwrap(), h.predict(&inputs).unwrap());
            let two = Inputs::new(d.text.view(), d.image.view()).unwrap();
            if fields.len() != 2 {
                assert!(matches!(
                    h.predict(&two),
                    Err(HeadError::ShapeMismatch { .. })
                ));
            }
        }
    }
}

/// Version 1 (two fields, no field count) is still read: the same head, re-encoded as version 2.
#[test]
fn version_1_two_field_heads_still_decode() {
    for spec in [HeadSpec::early(), HeadSpec::late()] {
        let (h, _) = head(spec.with_hidden(4), &[10, 10]);
        let v2 = h.to_bytes();
        assert_eq!(u64::from_le_bytes(v2[12..20].try_into().unwrap()), 2);
        let mut v1 = v2[..12].to_vec();
        v1[4..8].copy_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&v2[20..]);
        let decoded = TrainedHead::from_bytes(&v1).unwrap();
        assert_eq!(decoded, h);
        assert_eq!(decoded.to_bytes(), v2);
    }
}

#[test]
fn random_corruption_never_panics() {
    let (h, _) = head(HeadSpec::late().with_hidden(3), &[10, 10, 10]);
    let bytes = h.to_bytes();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for _ in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..b.len());
            b[i] = rng.random();
        }
        // Either decodes to some head or errors; must not panic or allocate absurdly.
        if let Ok(decoded) = TrainedHead::from_bytes(&b) {
            assert_eq!(decoded.to_bytes(), b);
        }
    }
    for len in [0usize, 1, 7, 64, 512] {
        let noise: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        assert!(TrainedHead::from_bytes(&noise).is_err());
    }
}
