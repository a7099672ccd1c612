//! Normalisation of identifiers and addresses, so that one person is one account however
//! they type their email: surrounding space is trimmed, Unicode is folded with NFKC
//! (full-width and compatibility forms become their plain equivalents), and case is
//! folded. Phone numbers also lose the punctuation people put in them.

use unicode_normalization::UnicodeNormalization;

use super::schema::AddressVia;

/// A password (or other) identifier: trimmed, NFKC-folded and lower-cased, so sign-in
/// is case-insensitive as in Kratos.
pub fn identifier(raw: &str) -> String {
    raw.trim().nfkc().collect::<String>().to_lowercase()
}

/// An address to verify or recover through.
pub fn address(raw: &str, via: AddressVia) -> String {
    match via {
        AddressVia::Email => identifier(raw),
        AddressVia::Sms => raw
            .trim()
            .nfkc()
            .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')' | '.'))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_fold_case_space_and_width() {
        assert_eq!(identifier("  Alice@Example.COM "), "alice@example.com");
        assert_eq!(
            identifier("ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
            "alice@example.com"
        );
        assert_eq!(address("\tBOB@x.io\n", AddressVia::Email), "bob@x.io");
        assert_eq!(identifier("ﬁnn"), "finn");
    }

    #[test]
    fn phone_numbers_lose_punctuation() {
        assert_eq!(
            address(" +49 (30) 123-45.67 ", AddressVia::Sms),
            "+49301234567"
        );
        assert_eq!(address("＋４９ ３０", AddressVia::Sms), "+4930");
    }
}
