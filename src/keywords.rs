//! PostgreSQL's key words that `quote_ident()` quotes: every key word not in
//! the UNRESERVED_KEYWORD category of src/include/parser/kwlist.h.
//!
//! `quote_identifier()` (src/backend/utils/adt/ruleutils.c) leaves an
//! identifier bare only if it is lower-case ASCII letters, digits and `_`,
//! starts with a letter or `_`, and is not such a key word. The list is the
//! union over PostgreSQL 14–18 (PostgreSQL 15's `pg_get_keywords()` where
//! `catcode <> 'U'`, plus what 16 and 17 added: `system_user` reserved,
//! the `json*` constructors, `json` itself and `merge_action` as column-name
//! key words). Quoting a word that only a newer server reserves is harmless
//! on an older one; the reverse would be a syntax error.

/// Sorted (ASCII) for binary search.
pub const QUOTED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "json",
    "json_array",
    "json_arrayagg",
    "json_exists",
    "json_object",
    "json_objectagg",
    "json_query",
    "json_scalar",
    "json_serialize",
    "json_table",
    "json_value",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "merge_action",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// Whether PostgreSQL 14–18 reads `word` (lower case) as a key word that
/// cannot stand bare as an identifier.
pub fn needs_quotes(word: &str) -> bool {
    QUOTED.binary_search(&word).is_ok()
}

/// Quotes an identifier the way PostgreSQL's quote_ident does
/// (`quote_identifier()` in ruleutils.c): bare only if lower-case ASCII,
/// digits and `_`, not starting with a digit, and not a key word outside the
/// unreserved category (`select`, `user`, `between`…; see `keywords`).
pub fn quote_ident(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !needs_quotes(s);
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_complete() {
        assert!(QUOTED.windows(2).all(|w| w[0] < w[1]));
        for w in [
            "select",
            "user",
            "system_user",
            "json_table",
            "json",
            "merge_action",
            "between",
        ] {
            assert!(needs_quotes(w), "{w}");
        }
        for w in ["users", "index", "abort", "merge", "t"] {
            assert!(!needs_quotes(w), "{w}");
        }
    }

    #[test]
    fn identifiers_are_quoted_like_postgres() {
        assert_eq!(quote_ident("users"), "users");
        assert_eq!(quote_ident("Meeting \"Rooms\""), "\"Meeting \"\"Rooms\"\"\"");
        assert_eq!(quote_ident("1abc"), "\"1abc\"");
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_ident("index"), "index");
    }
}
