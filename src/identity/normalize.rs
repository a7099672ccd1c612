//! Normalisation of identifiers and addresses, so that one person is one account however
//! they type their email: invisible characters are dropped, Unicode is folded with NFKC
//! (full-width and compatibility forms become their plain equivalents), case is folded
//! and surrounding space is trimmed. Phone numbers also lose the punctuation people put
//! in them.
//!
//! Stored identifiers are compared after this normalisation, so changing it changes who
//! can sign in: treat its output as persisted data.

use unicode_normalization::UnicodeNormalization;

use super::schema::AddressVia;

/// A password (or other) identifier: invisible characters removed, NFKC-folded,
/// lower-cased and trimmed, so sign-in is case-insensitive as in Kratos.
pub fn identifier(raw: &str) -> String {
    let folded: String = raw.chars().filter(|c| !is_invisible(*c)).nfkc().collect();
    // Lower-casing can leave a string that is no longer in NFKC (PRECIS maps case first).
    let folded: String = folded.to_lowercase().nfkc().collect();
    folded.trim().to_owned()
}

/// The longest identifier, normalised, in bytes: registration refuses longer ones, so a
/// sign-in with a longer one is not even looked up.
pub const MAX_IDENTIFIER_BYTES: usize = 1024;

/// A typed identifier, normalised for a lookup, or `None` when no stored identifier can
/// match it (longer than [`MAX_IDENTIFIER_BYTES`] once normalised, or holding a NUL,
/// which registration refuses too).
pub fn lookup_identifier(raw: &str) -> Option<String> {
    // NFKC can grow a string a few times over; anything this long cannot shrink back.
    if raw.len() > 4 * MAX_IDENTIFIER_BYTES || raw.contains('\0') {
        return None;
    }
    Some(identifier(raw)).filter(|id| id.len() <= MAX_IDENTIFIER_BYTES)
}

/// An address to verify or recover through, normalised for its channel: emails like
/// [`identifier`]; phone numbers NFKC-folded with spaces, dashes, dots and parentheses
/// removed (`+49 (30) 123-45` becomes `+493012345`).
pub fn address(raw: &str, via: AddressVia) -> String {
    match via {
        AddressVia::Email => identifier(raw),
        AddressVia::Sms => raw
            .chars()
            .filter(|c| !is_invisible(*c))
            .nfkc()
            .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')' | '.'))
            .collect(),
    }
}

/// Unicode's default-ignorable code points (soft hyphen, zero-width characters, bidi
/// controls, variation selectors, tags…): invisible, so two identifiers differing only
/// in them would look the same.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
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
        assert_eq!(identifier("\u{3000}Ａｄａ\u{3000}"), "ada");
    }

    #[test]
    fn invisible_characters_are_dropped() {
        assert_eq!(identifier("al\u{200B}ice@x.io"), "alice@x.io");
        assert_eq!(identifier("\u{FEFF}\u{200B} bob"), "bob");
        assert_eq!(identifier("e\u{00AD}ve\u{202E}"), "eve");
        assert_eq!(address("+49\u{200D}30", AddressVia::Sms), "+4930");
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
