//! The bloat arithmetic: pages the live rows of a heap or btree index need,
//! from what the catalogs say (`Input`), and the exact ratios from
//! pgstattuple's measurements. Pure functions, unit-tested here.

/// Relations smaller than this get no ratio: a few pages of slack are
/// normal and their ratio is noise.
const MIN_PAGES: f64 = 10.0;

/// What the catalogs say about one relation (heap or btree index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Input {
    pub pages: f64,
    /// pg_class.reltuples; negative: never analyzed or vacuumed.
    pub tuples: f64,
    /// Fillfactor in percent.
    pub fillfactor: f64,
    /// Columns stored in a tuple, and how many of them have statistics.
    pub columns: f64,
    pub columns_with_stats: f64,
    pub max_null_frac: f64,
    /// Average bytes of column data per tuple: Σ (1 - null_frac) · avg_width.
    pub width: f64,
    pub block_size: f64,
}

/// An estimate: pages the live tuples need and what is beyond that.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub needed_pages: f64,
    pub wasted_bytes: f64,
    /// wasted / size, 0–1; None under `MIN_PAGES`.
    pub ratio: Option<f64>,
}

const MAXALIGN: f64 = 8.0;
const PAGE_HEADER: f64 = 24.0;
const LINE_POINTER: f64 = 4.0;
/// BTPageOpaqueData at the end of every btree page.
const BTREE_OPAQUE: f64 = 16.0;
/// Internal btree pages are built 70 % full (BTREE_NONLEAF_FILLFACTOR).
const BTREE_NONLEAF_FILLFACTOR: f64 = 70.0;

fn maxalign(n: f64) -> f64 {
    (n.ceil() / MAXALIGN).ceil() * MAXALIGN
}

impl Input {
    /// Whether an estimate is possible: rows counted and every column's width known.
    pub fn has_statistics(&self) -> bool {
        self.tuples >= 0.0 && (self.tuples == 0.0 || self.columns_with_stats >= self.columns)
    }

    /// Tuples of `tuple` bytes (line pointer included) that fit on a page
    /// when `reserve` bytes must stay free (the fillfactor rule of heap
    /// insertion and of CREATE INDEX).
    fn per_page(&self, usable: f64, reserve: f64, tuple: f64) -> f64 {
        ((usable - reserve) / tuple).floor().max(1.0)
    }

    fn finish(&self, needed_pages: f64) -> Estimate {
        let wasted_pages = (self.pages - needed_pages).max(0.0);
        Estimate {
            needed_pages,
            wasted_bytes: wasted_pages * self.block_size,
            ratio: (self.pages >= MIN_PAGES).then(|| wasted_pages / self.pages),
        }
    }
}

/// Heap pages the live rows need at the table's fillfactor, TOAST excluded
/// (a toasted value counts with its 18-byte pointer, which is what
/// pg_stats.avg_width measures). None without statistics.
pub fn heap_estimate(i: &Input) -> Option<Estimate> {
    if !i.has_statistics() {
        return None;
    }
    // HeapTupleHeader is 23 bytes, plus a null bitmap when any column has NULLs.
    let bitmap = if i.max_null_frac > 0.0 {
        ((i.columns + 7.0) / 8.0).floor()
    } else {
        0.0
    };
    let tuple = maxalign(23.0 + bitmap) + maxalign(i.width) + LINE_POINTER;
    let usable = i.block_size - PAGE_HEADER;
    let reserve = i.block_size * (100.0 - i.fillfactor) / 100.0;
    // MaxHeapTuplesPerPage caps very narrow rows.
    let max_per_page = (usable / (maxalign(23.0) + LINE_POINTER)).floor();
    let per_page = i.per_page(usable, reserve, tuple).min(max_per_page);
    Some(i.finish((i.tuples / per_page).ceil()))
}

/// Btree pages the entries need at the index's fillfactor: the meta page,
/// leaf pages filled as CREATE INDEX fills them, and the internal levels
/// above. None without statistics.
pub fn btree_estimate(i: &Input) -> Option<Estimate> {
    if !i.has_statistics() {
        return None;
    }
    // IndexTupleData is 8 bytes, plus a 4-byte null bitmap when any column has NULLs.
    let header = if i.max_null_frac > 0.0 { 12.0 } else { 8.0 };
    let tuple = maxalign(header) + maxalign(i.width) + LINE_POINTER;
    let usable = i.block_size - PAGE_HEADER - BTREE_OPAQUE;
    let reserve = i.block_size * (100.0 - i.fillfactor) / 100.0;
    let leaf = (i.tuples / i.per_page(usable, reserve, tuple)).ceil();
    let mut needed = 1.0 + leaf;
    let fanout = i.per_page(
        usable,
        i.block_size * (100.0 - BTREE_NONLEAF_FILLFACTOR) / 100.0,
        tuple,
    );
    let mut level = leaf;
    while level > 1.0 {
        level = (level / fanout.max(2.0)).ceil();
        needed += level;
    }
    Some(i.finish(needed))
}

/// Exact heap ratio from pgstattuple: the share of the heap its live
/// tuples (with their page overhead) do not need at the fillfactor.
pub fn heap_exact_ratio(table_len: f64, free: f64, dead: f64, fillfactor: f64) -> Option<f64> {
    (table_len > 0.0)
        .then(|| (1.0 - (table_len - free - dead) / (table_len * fillfactor / 100.0)).clamp(0.0, 1.0))
}

/// Exact btree ratio from pgstatindex: leaf pages shrunk to the fillfactor
/// density, plus internal pages and the meta page, against the total
/// (deleted and empty pages count as wasted).
pub fn btree_exact_ratio(
    index_size: f64,
    block_size: f64,
    internal: f64,
    leaf: f64,
    density_pct: f64,
    fillfactor: f64,
) -> Option<f64> {
    let total = index_size / block_size;
    (total > 0.0 && density_pct.is_finite())
        .then(|| (1.0 - (1.0 + internal + leaf * density_pct / fillfactor) / total).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn narrow(pages: f64, tuples: f64) -> Input {
        Input {
            pages,
            tuples,
            fillfactor: 100.0,
            columns: 2.0,
            columns_with_stats: 2.0,
            max_null_frac: 0.0,
            width: 8.0,
            block_size: 8192.0,
        }
    }

    #[test]
    fn heap_of_two_ints_matches_the_page_layout() {
        // 24-byte header + 8 bytes data + 4-byte line pointer: 226 rows per 8 kB page,
        // so 60,000 rows need the 266 pages a fresh load really takes.
        let e = heap_estimate(&narrow(266.0, 60000.0)).unwrap();
        assert_eq!(e.needed_pages, 266.0);
        assert_eq!(e.ratio, Some(0.0));
        // 60 % deleted: the same pages, 24,000 rows.
        let e = heap_estimate(&narrow(266.0, 24000.0)).unwrap();
        assert_eq!(e.needed_pages, 107.0);
        assert_eq!(e.wasted_bytes, 159.0 * 8192.0);
        assert!((e.ratio.unwrap() - 159.0 / 266.0).abs() < 1e-9);
    }

    #[test]
    fn fillfactor_nulls_and_the_narrow_row_cap() {
        let ff70 = Input {
            fillfactor: 70.0,
            ..narrow(100.0, 10000.0)
        };
        // 8168 - 2457.6 reserved = 5710.4 usable: 158 rows per page.
        assert_eq!(heap_estimate(&ff70).unwrap().needed_pages, 64.0);
        // Any NULL adds the bitmap; 23 + 1 still aligns to 24.
        let nulls = Input {
            max_null_frac: 0.3,
            columns: 9.0,
            columns_with_stats: 9.0,
            ..narrow(100.0, 10000.0)
        };
        // 23 + 2 bitmap bytes → 32-byte header: 8168 / 44 = 185 rows per page.
        assert_eq!(heap_estimate(&nulls).unwrap().needed_pages, 55.0);
        // No columns at all: MaxHeapTuplesPerPage (291) caps rows per page.
        let empty = Input {
            columns: 0.0,
            columns_with_stats: 0.0,
            width: 0.0,
            ..narrow(100.0, 2910.0)
        };
        assert_eq!(heap_estimate(&empty).unwrap().needed_pages, 10.0);
    }

    #[test]
    fn no_estimate_without_statistics_and_no_ratio_when_small() {
        assert_eq!(heap_estimate(&narrow(100.0, -1.0)), None);
        let unanalyzed = Input {
            columns_with_stats: 0.0,
            ..narrow(100.0, 5000.0)
        };
        assert!(!unanalyzed.has_statistics());
        assert_eq!(heap_estimate(&unanalyzed), None);
        assert_eq!(btree_estimate(&unanalyzed), None);
        // Everything deleted and vacuumed: no rows, no widths needed, all wasted.
        let emptied = Input {
            columns_with_stats: 0.0,
            ..narrow(50.0, 0.0)
        };
        assert_eq!(heap_estimate(&emptied).unwrap().ratio, Some(1.0));
        let small = heap_estimate(&narrow(9.0, 100.0)).unwrap();
        assert_eq!(small.ratio, None);
        assert_eq!(small.wasted_bytes, 8.0 * 8192.0);
    }

    #[test]
    fn btree_of_bigints() {
        let pk = Input {
            fillfactor: 90.0,
            columns: 1.0,
            columns_with_stats: 1.0,
            ..narrow(112.0, 40000.0)
        };
        // 8 + 8 + 4 = 20 bytes; (8152 - 819.2) / 20 = 366 per leaf; 110 leaves,
        // one root above them, one meta page.
        let e = btree_estimate(&pk).unwrap();
        assert_eq!(e.needed_pages, 112.0);
        assert_eq!(e.ratio, Some(0.0));
        let bloated = btree_estimate(&Input { pages: 224.0, ..pk }).unwrap();
        assert_eq!(bloated.ratio, Some(0.5));
    }

    #[test]
    fn exact_ratios() {
        // Fresh fillfactor-70 heap: 30 % free is the reserve, not bloat.
        assert_eq!(heap_exact_ratio(1000.0, 300.0, 0.0, 70.0), Some(0.0));
        // 60 % of its rows deleted: 72 % free, of which 60 % of the table is waste.
        let r = heap_exact_ratio(1000.0, 720.0, 0.0, 70.0).unwrap();
        assert!((r - 0.6).abs() < 1e-9, "{r}");
        assert_eq!(heap_exact_ratio(0.0, 0.0, 0.0, 100.0), None);
        // 100 leaf pages at 45 % density (half of 90), 1 internal, 1 meta.
        let r = btree_exact_ratio(102.0 * 8192.0, 8192.0, 1.0, 100.0, 45.0, 90.0).unwrap();
        assert!((r - (1.0 - 52.0 / 102.0)).abs() < 1e-9, "{r}");
        assert_eq!(btree_exact_ratio(8192.0, 8192.0, 0.0, 0.0, f64::NAN, 90.0), None);
    }
}
