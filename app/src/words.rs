//! Numbers in English sentences.

/// "1 dossier", "2 dossiers", "1,024 bytes".
pub fn count(n: usize, word: &str) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if n == 1 {
        format!("{grouped} {word}")
    } else {
        format!("{grouped} {word}s")
    }
}
#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_and_thousands_are_grouped() {
        assert_eq!(super::count(1, "change"), "1 change");
        assert_eq!(super::count(0, "dossier"), "0 dossiers");
        assert_eq!(super::count(1024, "byte"), "1,024 bytes");
        assert_eq!(super::count(1_234_567, "byte"), "1,234,567 bytes");
    }
}
