//! The admin console's directory searches, written once for both backends: the SQL text uses SQLite's `?`
//! placeholders, which the PostgreSQL store numbers (`pg_sql`).

/// The two statements of a search through `table` (whose rows are `columns`) for a keyword in its `id` or
/// `name` column: the count of matches, and one page of them, newest first. Each binds the
/// [`contains_pattern`] twice; the page then binds its limit and offset.
pub(crate) fn search_sql(table: &str, id: &str, name: &str, columns: &str) -> (String, String) {
    let filter = format!("WHERE LOWER({id}) LIKE ? ESCAPE '\\' OR LOWER({name}) LIKE ? ESCAPE '\\'");
    (
        format!("SELECT COUNT(*) FROM {table} {filter}"),
        format!("SELECT {columns} FROM {table} {filter} ORDER BY create_time DESC, {id} LIMIT ? OFFSET ?"),
    )
}

/// `%keyword%` for `LIKE … ESCAPE '\'`, lower-cased, with the wildcards in `keyword` escaped.
pub(crate) fn contains_pattern(keyword: &str) -> String {
    let mut pattern = String::with_capacity(keyword.len() + 2);
    pattern.push('%');
    for c in keyword.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(super::contains_pattern(""), "%%");
        assert_eq!(super::contains_pattern("Al_i%c\\e"), "%al\\_i\\%c\\\\e%");
    }
}
