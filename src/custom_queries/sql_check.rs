//! The SQL of a custom query: one statement that only reads, checked at
//! start the way PostgreSQL's lexer splits statements.

/// Statements a custom query may start with: queries, nothing else.
const QUERY_KEYWORDS: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE"];

/// One statement that reads: it starts (after comments and opening
/// parentheses) with SELECT, WITH, VALUES or TABLE, and no `;` outside
/// quotes, comments and dollar quotes is followed by more text. Scanned the
/// way PostgreSQL's lexer (scan.l) splits statements: `'…'` (`''` inside),
/// `E'…'` (backslash escapes), `"…"`, `$tag$…$tag$`, `--` and nested
/// `/* */`. A data-modifying CTE (`WITH x AS (INSERT …) SELECT …`) passes
/// here and fails at run time: every run is in a read-only transaction.
pub fn check_sql(sql: &str) -> Result<(), String> {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut first_word: Option<String> = None;
    let mut ended = false; // a `;` was seen: only blanks and comments may follow
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b[i..].starts_with(b"--") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b[i..].starts_with(b"/*") {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            if depth != 0 {
                return Err("sql has an unterminated /* comment".into());
            }
            continue;
        }
        if ended {
            return Err("sql holds more than one statement (text after ';'): one query per entry".into());
        }
        if c == b';' {
            ended = true;
            i += 1;
            continue;
        }
        if first_word.is_none() {
            if c == b'(' {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = sql[start..i].to_ascii_uppercase();
            if !QUERY_KEYWORDS.contains(&word.as_str()) {
                let shown: String = sql[start..].chars().take(20).collect();
                return Err(format!(
                    "sql must be one query starting with SELECT, WITH, VALUES or TABLE, not {shown:?}"
                ));
            }
            first_word = Some(word);
            continue;
        }
        let escapes = (c == b'E' || c == b'e')
            && b.get(i + 1) == Some(&b'\'')
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
        if escapes {
            i += 1;
        }
        match b[i] {
            b'\'' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("sql has an unterminated string".into()),
                        Some(b'\\') if escapes => i += 2,
                        Some(b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'"' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("sql has an unterminated quoted identifier".into()),
                        Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'$' => match dollar_tag(&b[i..]) {
                Some(tag) => {
                    let body = i + tag.len();
                    match find(&b[body..], tag) {
                        Some(end) => i = body + end + tag.len(),
                        None => return Err("sql has an unterminated dollar-quoted string".into()),
                    }
                }
                // $1 or a $ inside an identifier.
                None => i += 1,
            },
            _ => {
                // An identifier or number: skipped whole, so `x$y$` is not a tag.
                if b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80 {
                    while i < b.len()
                        && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
                    {
                        i += 1;
                    }
                } else {
                    i += 1;
                }
            }
        }
    }
    if first_word.is_none() {
        return Err("sql holds no query".into());
    }
    Ok(())
}

/// `$tag$` at the start of `b` (tag: letters, digits, `_`, not starting with a digit).
fn dollar_tag(b: &[u8]) -> Option<&[u8]> {
    let mut j = 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
        j += 1;
    }
    let starts_ok = j == 1 || !b[1].is_ascii_digit();
    (b.get(j) == Some(&b'$') && starts_ok).then(|| &b[..=j])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_reading_statement_is_accepted() {
        for good in [
            "SELECT 1 AS v",
            "  select 1 AS v;  ",
            "-- comment\n/* a /* nested */ one */ WITH x AS (SELECT 1 AS v) SELECT v FROM x",
            "(SELECT 1 AS v)",
            "VALUES (1)",
            "TABLE t",
            "SELECT ';' AS v",
            "SELECT 'it''s; fine' AS v",
            "SELECT E'a\\'; b' AS v",
            "SELECT $$ ; $$ AS v",
            "SELECT $x$ ; $y$ ; $x$ AS v",
            "SELECT \"a;b\" FROM t",
            "SELECT 1 AS v; -- trailing comment",
            "SELECT $1::int AS v",
            "SELECT x$y FROM t",
        ] {
            assert_eq!(check_sql(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            (
                "SET default_transaction_read_only = off",
                "not \"SET default_transa",
            ),
            ("INSERT INTO t VALUES (1)", "starting with SELECT"),
            ("SELECT 1; SELECT 2", "more than one statement"),
            ("SELECT 1; SET x = 1", "more than one statement"),
            ("SELECT 'a'; DELETE FROM t", "more than one statement"),
            ("SELECT $$;$$; DROP TABLE t", "more than one statement"),
            ("DO $$ BEGIN END $$", "starting with SELECT"),
            ("COPY t TO STDOUT", "starting with SELECT"),
            ("CALL p()", "starting with SELECT"),
            ("SELECT 'open", "unterminated string"),
            ("SELECT $q$ open", "unterminated dollar"),
            ("SELECT 1 /* open", "unterminated /*"),
            ("-- only a comment", "no query"),
            (";", "no query"),
            ("SÉLECT 1", "starting with SELECT"),
        ] {
            let e = check_sql(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
