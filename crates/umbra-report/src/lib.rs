#![doc = include_str!("../README.md")]

use std::error::Error;
use std::fmt;

/// An error and its causes, displayed on one line: `message: cause: cause…`.
///
/// Wrap any `&dyn Error` (an `anyhow::Error` derefs to one) and format it with `{}`.
#[derive(Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for cause in chain(self.0) {
            if !first {
                f.write_str(": ")?;
            }
            first = false;
            write_one_line(f, &cause.to_string())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `e.report()`: the [`Report`] of any error, for log fields and messages
/// (`tracing::warn!(error = %e.report(), "…")`).
pub trait ErrorExt {
    /// This error and its causes, displayed on one line.
    fn report(&self) -> Report<'_>;
}

impl<E: Error + 'static> ErrorExt for E {
    fn report(&self) -> Report<'_> {
        Report(self)
    }
}

/// The error followed by each of its sources, outermost first.
pub fn chain<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    let mut next = Some(e);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.source();
        Some(current)
    })
}

/// Writes `text` with its line breaks folded to single spaces.
fn write_one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let mut parts = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if let Some(p) = parts.next() {
        f.write_str(p)?;
    }
    for p in parts {
        f.write_str(" ")?;
        f.write_str(p)?;
    }
    Ok(())
}

/// Test helper: fails if any error in `e`'s chain repeats the message of its own source.
///
/// Use it on real failures (a port in use, an unreadable file) so that every error type on
/// the way keeps to the rule this crate relies on.
///
/// # Panics
///
/// When an error's message contains the message of its source: that error both shows and
/// returns its cause, and [`Report`] would print the cause twice.
#[allow(clippy::panic)]
pub fn assert_cause_once(e: &(dyn Error + 'static)) {
    for cause in chain(e) {
        let Some(source) = cause.source() else {
            continue;
        };
        let (outer, inner) = (cause.to_string(), source.to_string());
        if !inner.is_empty() && outer.contains(&inner) {
            panic!(
                "error {outer:?} shows its cause {inner:?} and also returns it from source(): \
                 the cause would print twice; drop it from the message"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("opening the store")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("reading page 3\nof the index")]
    struct Middle(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("binding the listener: {0}")]
    struct Repeats(#[source] std::io::Error);

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use")
    }

    #[test]
    fn joins_the_chain_on_one_line() {
        let e = Outer(Middle(io()));
        assert_eq!(
            Report(&e).to_string(),
            "opening the store: reading page 3 of the index: Address already in use"
        );
        assert_cause_once(&e);
    }

    #[test]
    fn the_extension_reports_the_same() {
        let e = Outer(Middle(io()));
        assert_eq!(e.report().to_string(), Report(&e).to_string());
    }

    #[test]
    fn a_lone_error_is_its_message() {
        assert_eq!(Report(&io()).to_string(), "Address already in use");
    }

    #[test]
    fn shows_a_repeated_cause_as_it_is() {
        // The reporter does not paper over a broken error: the repetition stays visible…
        let e = Repeats(io());
        assert_eq!(
            Report(&e).to_string(),
            "binding the listener: Address already in use: Address already in use"
        );
    }

    #[test]
    #[should_panic(expected = "would print twice")]
    fn the_helper_catches_a_repeated_cause() {
        // …and the test helper names it.
        assert_cause_once(&Repeats(io()));
    }
}
