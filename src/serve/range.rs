//! The `Range` header of a blob request: one byte range, as the distribution spec asks
//! registries to honour. Anything else is answered with the whole blob, which HTTP allows.

/// What to send of a blob of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// All of it (no `Range`, or one this server does not take apart).
    Whole,
    /// `len` bytes from `start` (206).
    Part {
        /// The first byte.
        start: u64,
        /// How many bytes.
        len: u64,
    },
    /// The range lies past the end (416).
    Unsatisfiable,
}

/// Reads `header` (`bytes=A-B`, `bytes=A-`, `bytes=-N`) against a blob of `total` bytes.
pub fn span(header: Option<&str>, total: u64) -> Span {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Span::Whole;
    };
    if spec.contains(',') {
        return Span::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Span::Whole;
    };
    let number = |s: &str| -> Option<Option<u64>> {
        let s = s.trim();
        if s.is_empty() {
            Some(None)
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok().map(Some)
        } else {
            None
        }
    };
    let (Some(first), Some(last)) = (number(first), number(last)) else {
        return Span::Whole;
    };
    match (first, last) {
        (Some(start), _) if start >= total => Span::Unsatisfiable,
        (Some(start), Some(end)) if end < start => Span::Whole,
        (Some(start), end) => {
            let end = end.map_or(total - 1, |e| e.min(total - 1));
            Span::Part {
                start,
                len: end - start + 1,
            }
        }
        (None, Some(0)) | (None, None) => Span::Unsatisfiable,
        (None, Some(_)) if total == 0 => Span::Unsatisfiable,
        (None, Some(suffix)) => {
            let len = suffix.min(total);
            Span::Part {
                start: total - len,
                len,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_are_cut_as_rfc_9110_says() {
        let part = |start, len| Span::Part { start, len };
        assert_eq!(span(None, 10), Span::Whole);
        assert_eq!(span(Some("bytes=0-3"), 10), part(0, 4));
        assert_eq!(span(Some("bytes=4-"), 10), part(4, 6));
        assert_eq!(span(Some("bytes=8-100"), 10), part(8, 2));
        assert_eq!(span(Some("bytes=-3"), 10), part(7, 3));
        assert_eq!(span(Some("bytes=-30"), 10), part(0, 10));
        assert_eq!(span(Some("bytes=10-"), 10), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=10-20"), 10), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=-0"), 10), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=0-"), 0), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=-5"), 0), Span::Unsatisfiable);
        // What is not one plain range is ignored: the whole blob is sent.
        assert_eq!(span(Some("bytes=0-1,4-5"), 10), Span::Whole);
        assert_eq!(span(Some("bytes=5-2"), 10), Span::Whole);
        assert_eq!(span(Some("items=0-1"), 10), Span::Whole);
        assert_eq!(span(Some("bytes=x-1"), 10), Span::Whole);
        assert_eq!(
            span(Some("bytes=99999999999999999999999-"), 10),
            Span::Whole
        );
    }
}
