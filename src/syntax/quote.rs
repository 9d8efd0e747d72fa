//! Quoting, the inverse of parsing: words written so that parsing the text
//! gives the same words back, for `set -x`, `export -p` and messages.

/// Quotes a word for display so that pasting it back gives the same word.
pub fn quote(word: &str) -> String {
    match shlex::try_quote(word) {
        Ok(quoted) => quoted.into_owned(),
        Err(_) => format!("{word:?}"),
    }
}

/// Quotes and joins words for display.
pub fn quote_all<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    words
        .into_iter()
        .map(|w| quote(&w.as_ref().to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}
