//! Query results, packed as they stream in.
//!
//! tokio-postgres' `Row` keeps each row's wire message (a slice of the
//! connection's read buffer) plus a 24-byte range per column: at 10,000
//! tables the 30,000 index rows alone held ~20 MB that way, and the read
//! buffers they pointed into stayed alive until the last row was dropped
//! (issue 6, heaptrack). `Rows` copies each row's column bytes into one
//! buffer as the row arrives (`RowsBuilder::push`, fed from `query_raw`), with
//! one `u32` per column, so a result costs about its wire size and the read
//! buffer is reused at once. `Row` is a two-word view with the same
//! `try_get`/`columns` API collectors already used, and values borrow from
//! the buffer (`&str` columns cost no allocation).

use std::sync::Arc;

use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Column, Statement};

/// Set in a bound when the column is NULL; data may not exceed it.
const NULL: u32 = 1 << 31;

/// All rows of one query's result.
#[derive(Default)]
pub struct Rows {
    /// Column names and types (`None` for the empty default and for an
    /// empty result of an unnamed statement, whose columns are only known
    /// from its rows).
    statement: Option<Arc<[Col]>>,
    columns: usize,
    /// Every column's bytes, row after row.
    data: Vec<u8>,
    /// Per row and column: where its bytes end in `data` (`| NULL` if NULL).
    bounds: Vec<u32>,
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rows({} rows, {} bytes)", self.len(), self.data.len())
    }
}

impl<'a> Default for &'a Rows {
    fn default() -> &'a Rows {
        static EMPTY: Rows = Rows {
            statement: None,
            columns: 0,
            data: Vec::new(),
            bounds: Vec::new(),
        };
        &EMPTY
    }
}

impl Rows {
    pub fn len(&self) -> usize {
        self.bounds.len().checked_div(self.columns).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<Row<'_>> {
        (i < self.len()).then_some(Row { rows: self, i })
    }

    pub fn first(&self) -> Option<Row<'_>> {
        self.get(0)
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            rows: self,
            range: 0..self.len(),
        }
    }
}

/// The rows of `Rows` in order (`for row in rows`).
#[derive(Clone)]
pub struct Iter<'a> {
    rows: &'a Rows,
    range: std::ops::Range<usize>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Row<'a>;
    fn next(&mut self) -> Option<Row<'a>> {
        self.range.next().map(|i| Row { rows: self.rows, i })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }
}

impl<'a> IntoIterator for &'a Rows {
    type Item = Row<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Collects rows from a `RowStream` into `Rows`.
pub struct RowsBuilder {
    rows: Rows,
}

/// Any column's bytes, whatever its type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A result column's name and type (tokio-postgres' `Column` cannot be
/// copied out of a row, and an unnamed statement has no `Statement`).
#[derive(Debug)]
pub struct Col {
    name: String,
    ty: Type,
}

impl Col {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn type_(&self) -> &Type {
        &self.ty
    }
}

impl RowsBuilder {
    pub fn new(statement: &Statement) -> RowsBuilder {
        RowsBuilder::with_columns(statement.columns())
    }

    /// For rows that come without a `Statement` (`query_typed_raw`): the
    /// columns of their first row.
    pub fn with_columns(columns: &[Column]) -> RowsBuilder {
        let cols: Arc<[Col]> = columns
            .iter()
            .map(|c| Col {
                name: c.name().to_string(),
                ty: c.type_().clone(),
            })
            .collect();
        RowsBuilder {
            rows: Rows {
                columns: cols.len(),
                statement: Some(cols),
                data: Vec::new(),
                bounds: Vec::new(),
            },
        }
    }

    /// Appends one row; its buffer can be dropped right after.
    pub fn push(&mut self, row: &tokio_postgres::Row) -> Result<(), RowError> {
        if row.len() != self.rows.columns {
            return Err(RowError::Shape(row.len(), self.rows.columns));
        }
        for i in 0..row.len() {
            let raw: Option<Raw> = row.try_get(i).map_err(|e| RowError::Decode {
                column: row.columns()[i].name().to_string(),
                message: e.to_string(),
            })?;
            match raw {
                Some(Raw(bytes)) => {
                    self.rows.data.extend_from_slice(bytes);
                    if self.rows.data.len() >= NULL as usize {
                        return Err(RowError::TooLarge);
                    }
                    self.rows.bounds.push(self.rows.data.len() as u32);
                }
                None => self.rows.bounds.push(self.rows.data.len() as u32 | NULL),
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Rows {
        self.rows.data.shrink_to_fit();
        self.rows.bounds.shrink_to_fit();
        self.rows
    }
}

/// One row of `Rows`: a view, cheap to copy.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    rows: &'a Rows,
    i: usize,
}

/// A column index (kept generic so `try_get::<_, T>` reads as with tokio-postgres).
pub trait ColumnIndex: Copy {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

impl<'a> Row<'a> {
    pub fn columns(&self) -> &'a [Col] {
        match &self.rows.statement {
            Some(s) => s,
            None => &[],
        }
    }

    pub fn len(&self) -> usize {
        self.rows.columns
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn raw(&self, col: usize) -> Option<&'a [u8]> {
        let k = self.i * self.rows.columns + col;
        let end = self.rows.bounds[k];
        if end & NULL != 0 {
            return None;
        }
        let start = match k {
            0 => 0,
            _ => self.rows.bounds[k - 1] & !NULL,
        };
        Some(&self.rows.data[start as usize..end as usize])
    }

    /// The column's value as `T` (`Option<T>` for a column that may be NULL),
    /// borrowing from the result where `T` does (`&str`).
    pub fn try_get<I: ColumnIndex, T: FromSql<'a>>(&self, idx: I) -> Result<T, RowError> {
        let idx = idx.index();
        let column = self.columns().get(idx).ok_or(RowError::NoColumn(idx))?;
        let ty = column.type_();
        if !T::accepts(ty) {
            return Err(RowError::WrongType {
                column: column.name().to_string(),
                sql: ty.to_string(),
                rust: std::any::type_name::<T>(),
            });
        }
        T::from_sql_nullable(ty, self.raw(idx)).map_err(|e| RowError::Decode {
            column: column.name().to_string(),
            message: e.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("no column {0} in the result")]
    NoColumn(usize),
    #[error("column {column} has type {sql}, which does not convert to {rust}")]
    WrongType {
        column: String,
        sql: String,
        rust: &'static str,
    },
    #[error("column {column}: {message}")]
    Decode { column: String, message: String },
    #[error("a row has {0} columns where the statement has {1}")]
    Shape(usize, usize),
    #[error("the result is over 2 GiB")]
    TooLarge,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rows of three columns, with NULLs first, in the middle and last.
    fn packed() -> Rows {
        let mut data = Vec::new();
        let mut bounds = Vec::new();
        for row in [[None, Some("ab"), Some("")], [Some("cde"), None, None]] {
            for col in row {
                match col {
                    Some(v) => {
                        data.extend_from_slice(v.as_bytes());
                        bounds.push(data.len() as u32);
                    }
                    None => bounds.push(data.len() as u32 | NULL),
                }
            }
        }
        Rows {
            statement: None,
            columns: 3,
            data,
            bounds,
        }
    }

    #[test]
    fn columns_are_read_back_with_their_nulls() {
        let rows = packed();
        assert_eq!(rows.len(), 2);
        let got: Vec<Vec<Option<&[u8]>>> = rows.iter().map(|r| (0..3).map(|c| r.raw(c)).collect()).collect();
        assert_eq!(
            got,
            vec![
                vec![None, Some(&b"ab"[..]), Some(&b""[..])],
                vec![Some(&b"cde"[..]), None, None],
            ]
        );
    }

    #[test]
    fn the_empty_default_has_no_rows() {
        let empty: &Rows = Default::default();
        assert!(empty.is_empty() && empty.first().is_none() && empty.iter().next().is_none());
    }
}
