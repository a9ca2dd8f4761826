//! Seeded stratified train / validation / test split.
//!
//! Algorithm (deterministic for a given label vector, fractions and seed):
//! 1. Group row indices by label, labels in ascending order, rows ascending within a label.
//! 2. One ChaCha8 stream seeded with `seed` shuffles each group in turn (Fisher–Yates).
//! 3. Each group of `n` rows is cut into parts of sizes given by the largest-remainder
//!    method on the targets `fraction · n`: every part gets the floor of its target, and
//!    the rows left over go one each to the parts with the largest fractional remainders
//!    (ties to train, then validation, then test). Every part of every class is therefore
//!    within one row of its target share, and the parts add up to `n`.
//! 4. The first rows of the shuffled group go to train, the next to validation, the rest
//!    to test; each part is returned in ascending row order.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::error::{HeadError, Result};

/// Target shares of the three parts; they must be non-negative and sum to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitFractions {
    /// Training share (must be positive).
    pub train: f64,
    /// Validation share (used for epoch selection / early stopping).
    pub val: f64,
    /// Held-out test share.
    pub test: f64,
}

impl Default for SplitFractions {
    /// 0.70 / 0.15 / 0.15.
    fn default() -> Self {
        Self {
            train: 0.70,
            val: 0.15,
            test: 0.15,
        }
    }
}

impl SplitFractions {
    fn validate(&self) -> Result<()> {
        let parts = [self.train, self.val, self.test];
        let ok = parts.iter().all(|f| f.is_finite() && *f >= 0.0)
            && self.train > 0.0
            && (parts.iter().sum::<f64>() - 1.0).abs() < 1e-9;
        if ok {
            Ok(())
        } else {
            Err(HeadError::InvalidConfig(format!(
                "split fractions must be >= 0, train > 0, sum to 1: {self:?}"
            )))
        }
    }
}

/// Row indices of the three parts, each ascending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows.
    pub val: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
}

/// Splits rows into train / validation / test, stratified by label (see the module docs).
///
/// ```
/// use medvec_query::heads::{stratified_split, SplitFractions};
/// let labels: Vec<usize> = (0..100).map(|i| i % 4).collect();
/// let s = stratified_split(&labels, SplitFractions::default(), 7).unwrap();
/// assert_eq!(s.train.len() + s.val.len() + s.test.len(), 100);
/// assert_eq!(s, stratified_split(&labels, SplitFractions::default(), 7).unwrap());
/// ```
pub fn stratified_split(labels: &[usize], fractions: SplitFractions, seed: u64) -> Result<Split> {
    fractions.validate()?;
    if labels.is_empty() {
        return Err(HeadError::Empty("labels"));
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (row, &label) in labels.iter().enumerate() {
        groups.entry(label).or_default().push(row);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut split = Split {
        train: Vec::new(),
        val: Vec::new(),
        test: Vec::new(),
    };
    for rows in groups.values_mut() {
        shuffle(rows, &mut rng);
        let [n_train, n_val, _] = part_sizes(rows.len(), &fractions);
        split.train.extend_from_slice(&rows[..n_train]);
        split.val.extend_from_slice(&rows[n_train..n_train + n_val]);
        split.test.extend_from_slice(&rows[n_train + n_val..]);
    }
    split.train.sort_unstable();
    split.val.sort_unstable();
    split.test.sort_unstable();
    Ok(split)
}

/// Splits rows into train / validation / test so that all rows of a group (a lesion, a
/// patient) fall in one part, stratified by label as far as the groups allow.
///
/// Algorithm (deterministic for given labels, groups, fractions and seed), after scikit-learn's
/// `StratifiedGroupKFold`: the groups are shuffled with the seed, then ordered largest first
/// (stable), and each is put in the part where it least increases the squared distance between
/// the parts' per-class counts and their targets (`fraction · class total`); ties go to train,
/// then validation, then test. `groups[row]` is the row's group number.
///
/// ```
/// use medvec_query::heads::{stratified_group_split, SplitFractions};
/// let labels: Vec<usize> = (0..120).map(|i| (i / 3) % 2).collect();
/// let groups: Vec<usize> = (0..120).map(|i| i / 3).collect(); // three rows per group
/// let s = stratified_group_split(&labels, &groups, SplitFractions::default(), 7).unwrap();
/// let part_of = |row: usize| [&s.train, &s.val, &s.test].iter().position(|p| p.contains(&row));
/// assert!((0..120).all(|r| part_of(r) == part_of(r / 3 * 3))); // a group stays together
/// ```
pub fn stratified_group_split(
    labels: &[usize],
    groups: &[usize],
    fractions: SplitFractions,
    seed: u64,
) -> Result<Split> {
    fractions.validate()?;
    if labels.is_empty() {
        return Err(HeadError::Empty("labels"));
    }
    if groups.len() != labels.len() {
        return Err(HeadError::InvalidConfig(format!(
            "{} group numbers for {} labels",
            groups.len(),
            labels.len()
        )));
    }
    let shares = [fractions.train, fractions.val, fractions.test];
    let parts = assign_parts(labels, groups, &shares, seed);
    let [train, val, test]: [Vec<usize>; 3] = parts.try_into().expect("three shares");
    Ok(Split { train, val, test })
}

/// Puts whole groups into `shares.len()` parts, each part's per-class counts as close to
/// `share · class total` as the groups allow (see [`stratified_group_split`]); each part's rows
/// ascending. With every row its own group this is a stratified split into any number of parts.
pub fn assign_parts(
    labels: &[usize],
    groups: &[usize],
    shares: &[f64],
    seed: u64,
) -> Vec<Vec<usize>> {
    let classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (row, &group) in groups.iter().enumerate() {
        members.entry(group).or_default().push(row);
    }
    let mut order: Vec<Vec<usize>> = members.into_values().collect();
    shuffle(&mut order, &mut ChaCha8Rng::seed_from_u64(seed));
    order.sort_by_key(|rows| std::cmp::Reverse(rows.len()));
    let mut totals = vec![0f64; classes];
    for &label in labels {
        totals[label] += 1.0;
    }
    let mut counts = vec![vec![0f64; classes]; shares.len()];
    let mut parts: Vec<Vec<usize>> = vec![Vec::new(); shares.len()];
    for rows in order {
        let mut added = vec![0f64; classes];
        for &row in &rows {
            added[labels[row]] += 1.0;
        }
        let cost = |p: usize| -> f64 {
            (0..classes)
                .map(|k| {
                    let (now, target) = (counts[p][k], shares[p] * totals[k]);
                    (now + added[k] - target).powi(2) - (now - target).powi(2)
                })
                .sum()
        };
        let best = (0..shares.len())
            .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
            .expect("at least one part");
        for k in 0..classes {
            counts[best][k] += added[k];
        }
        parts[best].extend(rows);
    }
    for part in &mut parts {
        part.sort_unstable();
    }
    parts
}

/// Fisher–Yates, written out so the permutation depends only on the ChaCha8 stream.
pub(crate) fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

/// Largest-remainder apportionment of `n` rows to the three parts.
fn part_sizes(n: usize, f: &SplitFractions) -> [usize; 3] {
    let targets = [f.train * n as f64, f.val * n as f64, f.test * n as f64];
    let mut sizes = targets.map(|t| t.floor() as usize);
    let assigned: usize = sizes.iter().sum();
    let mut order = [0usize, 1, 2];
    // Stable sort keeps train < val < test among equal remainders.
    order.sort_by(|&a, &b| {
        let (ra, rb) = (
            targets[a] - targets[a].floor(),
            targets[b] - targets[b].floor(),
        );
        rb.total_cmp(&ra)
    });
    for &part in order.iter().take(n.saturating_sub(assigned)) {
        sizes[part] += 1;
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_split_keeps_groups_whole_and_near_the_fractions() {
        // 300 groups of 1–5 rows, three classes of unequal size.
        let (mut labels, mut groups) = (Vec::new(), Vec::new());
        for g in 0..300usize {
            for _ in 0..(g * 7 % 5 + 1) {
                labels.push(if g % 10 < 6 {
                    0
                } else if g % 10 < 9 {
                    1
                } else {
                    2
                });
                groups.push(g);
            }
        }
        let f = SplitFractions::default();
        let s = stratified_group_split(&labels, &groups, f, 3).unwrap();
        let n = labels.len();
        assert_eq!(s.train.len() + s.val.len() + s.test.len(), n);
        let part = |rows: &[usize]| {
            rows.iter()
                .map(|&r| groups[r])
                .collect::<std::collections::BTreeSet<_>>()
        };
        let (a, b, c) = (part(&s.train), part(&s.val), part(&s.test));
        assert!(a.is_disjoint(&b) && a.is_disjoint(&c) && b.is_disjoint(&c));
        for (rows, share) in [(&s.train, f.train), (&s.val, f.val), (&s.test, f.test)] {
            for class in 0..3 {
                let total = labels.iter().filter(|&&l| l == class).count() as f64;
                let got = rows.iter().filter(|&&r| labels[r] == class).count() as f64;
                assert!(
                    (got / total - share).abs() < 0.05,
                    "class {class}: {got}/{total} vs {share}"
                );
            }
        }
        assert_eq!(s, stratified_group_split(&labels, &groups, f, 3).unwrap());
        assert_ne!(s, stratified_group_split(&labels, &groups, f, 4).unwrap());
    }

    #[test]
    fn part_sizes_add_up_and_stay_within_one() {
        let f = SplitFractions::default();
        for n in 0..500 {
            let s = part_sizes(n, &f);
            assert_eq!(s.iter().sum::<usize>(), n);
            for (size, frac) in s.iter().zip([f.train, f.val, f.test]) {
                assert!((*size as f64 - frac * n as f64).abs() < 1.0, "n={n} {s:?}");
            }
        }
    }
}
