//! Duplicate indexes: which indexes of a table are interchangeable, and
//! which one of each group to keep. Pure logic over the rows of the
//! `indexes` query (`IndexDef`), unit-tested here.

#[cfg(test)]
use std::collections::HashSet;

use rustc_hash::FxHashMap;

/// What makes two indexes interchangeable, and what decides which to keep.
#[derive(Debug, Clone)]
pub(super) struct IndexDef<'a> {
    pub(super) oid: u32,
    pub(super) table: u32,
    /// indkey, indclass, indcollation, indoption, expressions, predicate
    /// (borrowed from the query's rows).
    pub(super) shape: [&'a str; 6],
    /// The rule it enforces: exclusion operators of its constraint ("" if
    /// none); two indexes with different rules are never duplicates.
    pub(super) exclop: &'a str,
    pub(super) unique: bool,
    pub(super) nulls_not_distinct: bool,
    pub(super) immediate: bool,
    pub(super) exclusion: bool,
    pub(super) primary: bool,
    /// Backs a primary key, unique or exclusion constraint.
    pub(super) constraint: bool,
    /// A foreign key (of any table) depends on it.
    pub(super) referenced: bool,
    /// Attached to a partitioned index: dropped only with its parent.
    pub(super) attached: bool,
    pub(super) valid: bool,
    pub(super) ready: bool,
}

impl IndexDef<'_> {
    /// Enforces nothing: any valid index of the same shape serves its queries.
    fn plain(&self) -> bool {
        !self.unique && !self.exclusion && !self.constraint && !self.referenced
    }
    /// The rule, for "interchangeable".
    fn rule(&self) -> (bool, bool, bool, bool, &str) {
        (
            self.unique,
            self.nulls_not_distinct,
            self.immediate,
            self.exclusion,
            self.exclop,
        )
    }
    /// Sort key of the one to keep (smallest first).
    fn keep_order(&self) -> (bool, bool, bool, bool, bool, u32) {
        (
            !self.referenced,
            !self.primary,
            !self.constraint,
            !self.attached,
            !(self.valid && self.ready),
            self.oid,
        )
    }
}

/// The oids of indexes that duplicate another index of their table.
#[cfg(test)]
fn duplicates(defs: &[IndexDef<'_>]) -> HashSet<u32> {
    duplicates_of(defs).into_keys().collect()
}

/// Each duplicate's oid, with the oid of the index kept in its place.
///
/// Two indexes are duplicates only if interchangeable: the same shape and
/// the same rule (uniqueness, NULLS NOT DISTINCT, immediacy, exclusion
/// operators): `EXCLUDE USING gist (r WITH &&)` and `(r WITH -|-)`, or a
/// DEFERRABLE unique constraint and a plain unique index (which foreign keys,
/// ON CONFLICT and REFRESH MATERIALIZED VIEW CONCURRENTLY need), are not.
/// Per group one is kept: the one a foreign key depends on, then the primary
/// key, then one backing a constraint, then one attached to a partitioned
/// index (it cannot be dropped alone), then a valid one, then the oldest. A
/// plain index (enforcing nothing) is also a duplicate of a valid index of
/// the same shape that enforces a rule: that one serves every query it
/// serves. An index attached to a partitioned index is never listed (its
/// parent is).
pub(super) fn duplicates_of(defs: &[IndexDef<'_>]) -> FxHashMap<u32, u32> {
    // Duplicates share a table: sorted by table, then shape, each group of
    // same-shape indexes is a run of neighbours. (Hashing every index's six
    // shape strings into one map was ~6 % of a 10,000-table scrape's CPU;
    // the sort mostly compares table oids.)
    let mut order: Vec<&IndexDef> = defs.iter().collect();
    order.sort_unstable_by(|a, b| (a.table, &a.shape).cmp(&(b.table, &b.shape)));
    let mut dups = FxHashMap::default();
    for same_shape in order.chunk_by(|a, b| a.table == b.table && a.shape == b.shape) {
        if same_shape.len() < 2 {
            continue;
        }
        let mut members = same_shape.to_vec();
        members.sort_by(|a, b| a.rule().cmp(&b.rule()).then(a.keep_order().cmp(&b.keep_order())));
        // The best valid index enforcing a rule, if any: plain ones go.
        let enforcing = members
            .iter()
            .filter(|d| !d.plain() && d.valid && d.ready)
            .min_by_key(|d| d.keep_order())
            .copied();
        for group in members.chunk_by(|a, b| a.rule() == b.rule()) {
            // A group of plain indexes all give way to an enforcing one.
            let (kept, rest) = match enforcing {
                Some(e) if group[0].plain() => (e, group),
                _ => (group[0], &group[1..]),
            };
            dups.extend(rest.iter().filter(|d| !d.attached).map(|d| (d.oid, kept.oid)));
        }
    }
    dups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(oid: u32, cols: &str) -> IndexDef<'_> {
        IndexDef {
            oid,
            table: 1,
            shape: [cols, "1978", "0", "0", "", ""],
            exclop: "",
            unique: false,
            nulls_not_distinct: false,
            immediate: true,
            exclusion: false,
            primary: false,
            constraint: false,
            referenced: false,
            attached: false,
            valid: true,
            ready: true,
        }
    }

    fn unique(oid: u32, cols: &str) -> IndexDef<'_> {
        IndexDef {
            unique: true,
            ..def(oid, cols)
        }
    }

    #[test]
    fn keeps_the_oldest_of_plain_twins() {
        let d = duplicates(&[def(20, "2"), def(10, "2"), def(30, "2 3")]);
        assert_eq!(d, HashSet::from([20]));
    }

    #[test]
    fn keeps_the_constraint_or_unique_one() {
        let plain = def(10, "2");
        let constraint = IndexDef {
            constraint: true,
            ..unique(30, "2")
        };
        assert_eq!(duplicates(&[plain.clone(), unique(20, "2")]), HashSet::from([10]));
        let all = [plain, unique(20, "2"), constraint];
        assert_eq!(duplicates_of(&all), FxHashMap::from_iter([(10, 30), (20, 30)]));
    }

    #[test]
    fn different_rules_are_not_duplicates() {
        // EXCLUDE USING gist (r WITH &&) vs (r WITH -|-).
        let overlap = IndexDef {
            exclusion: true,
            constraint: true,
            exclop: "{3890}",
            ..def(10, "2")
        };
        let adjacent = IndexDef {
            exclop: "{3897}",
            oid: 20,
            ..overlap.clone()
        };
        assert!(duplicates(&[overlap.clone(), adjacent]).is_empty());
        // UNIQUE DEFERRABLE constraint vs a plain unique index.
        let deferrable = IndexDef {
            immediate: false,
            constraint: true,
            ..unique(30, "2")
        };
        assert!(duplicates(&[deferrable.clone(), unique(40, "2")]).is_empty());
        // NULLS NOT DISTINCT is another rule.
        let nnd = IndexDef {
            nulls_not_distinct: true,
            ..unique(50, "2")
        };
        assert!(duplicates(&[nnd, unique(60, "2")]).is_empty());
        // A plain index goes whichever of them is there (the oldest kept rule).
        let d = duplicates_of(&[deferrable, unique(40, "2"), def(70, "2"), overlap]);
        assert_eq!(d.get(&70), Some(&10));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn different_predicate_table_or_opclass_is_not_a_duplicate() {
        let mut partial = def(20, "2");
        partial.shape[5] = "(b > 0)";
        let mut other_table = def(30, "2");
        other_table.table = 2;
        let mut hash = def(40, "2");
        hash.shape[1] = "1977";
        assert!(duplicates(&[def(10, "2"), partial, other_table, hash]).is_empty());
    }

    #[test]
    fn keep_order_referenced_primary_constraint_attached_valid() {
        let invalid = IndexDef {
            valid: false,
            ..def(10, "1")
        };
        assert_eq!(duplicates(&[invalid, def(20, "1")]), HashSet::from([10]));
        let pk = IndexDef {
            primary: true,
            constraint: true,
            ..unique(90, "1")
        };
        let uc = IndexDef {
            constraint: true,
            ..unique(5, "1")
        };
        assert_eq!(duplicates(&[uc.clone(), pk.clone()]), HashSet::from([5]));
        // A foreign key depends on the plain unique index: it stays.
        let referenced = IndexDef {
            referenced: true,
            ..unique(100, "1")
        };
        assert_eq!(duplicates(&[uc, pk, referenced]), HashSet::from([5, 90]));
        // An attached index is kept, and never listed even if it loses.
        let attached = IndexDef {
            attached: true,
            ..def(200, "1")
        };
        assert_eq!(
            duplicates(&[def(150, "1"), attached.clone()]),
            HashSet::from([150])
        );
        let attached2 = IndexDef {
            oid: 300,
            ..attached.clone()
        };
        assert!(duplicates(&[attached, attached2]).is_empty());
    }

    #[test]
    fn a_plain_index_does_not_give_way_to_an_unready_one() {
        let broken = IndexDef {
            valid: false,
            ready: false,
            ..unique(10, "1")
        };
        assert!(duplicates(&[broken, def(20, "1")]).is_empty());
    }
}
