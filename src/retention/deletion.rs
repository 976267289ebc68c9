//! What deleting snapshots removes, the same for every catalog: the runs of deleted
//! snapshots between kept ones, and the references a deletion drops.

use std::collections::HashSet;

/// Each maximal run of snapshots whose IDs are in `doomed`, with the sequence numbers of
/// the kept snapshots around it. A run at either end (the first or the latest snapshot)
/// is not deleted, so it is left out.
pub fn deleted_spans(seqs: &[(i64, i64)], doomed: &HashSet<i64>) -> Vec<(i64, i64, Vec<i64>)> {
    let mut spans = Vec::new();
    let mut before: Option<i64> = None;
    let mut run = Vec::new();
    for &(seq, id) in seqs {
        if doomed.contains(&id) {
            run.push(seq);
            continue;
        }
        if let (Some(a), false) = (before, run.is_empty()) {
            spans.push((a, seq, std::mem::take(&mut run)));
        }
        run.clear();
        before = Some(seq);
    }
    spans
}

/// An entry row that only deleted snapshots see.
pub struct DoomedRow {
    pub path: String,
    pub first_seq: i64,
    pub sha256: Option<Vec<u8>>,
    pub size: i64,
}

/// References to one blob that a deletion would drop.
#[derive(Default)]
pub struct Held {
    pub size: i64,
    pub entry_rows: i64,
    pub resigned: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_between_kept_snapshots_and_never_at_the_ends() {
        let seqs: Vec<(i64, i64)> = (1..=7).map(|s| (s, 100 + s)).collect();
        // The first (101) and the latest (107) are never deleted, nor a run touching them.
        let doomed: HashSet<i64> = [101, 103, 104, 107].into_iter().collect();
        assert_eq!(deleted_spans(&seqs, &doomed), [(2, 5, vec![3, 4])]);
        let doomed: HashSet<i64> = [102, 106].into_iter().collect();
        assert_eq!(deleted_spans(&seqs, &doomed), [(1, 3, vec![2]), (5, 7, vec![6])]);
    }
}
