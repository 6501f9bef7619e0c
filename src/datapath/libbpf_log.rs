//! libbpf's own messages, sent to `log` (target `libbpf`) instead of
//! straight to stderr, so that `RUST_LOG` and the journal's levels govern
//! them like accel's.

use std::cell::Cell;

use libbpf_rs::PrintLevel;

thread_local! {
    /// Set while this thread asks libbpf something whose failure is an
    /// expected answer, such as "is there a filter?" on an interface
    /// without a clsact qdisc (the kernel's extack then says "Parent Qdisc
    /// doesn't exists", and libbpf prints it as a warning).
    static EXPECTED_FAILURE: Cell<bool> = const { Cell::new(false) };
}

/// Routes libbpf's messages into `log` from now on, at the levels `log`
/// lets through (libbpf's debug output only when debug is on for it).
pub fn install() {
    let level = if log::log_enabled!(target: "libbpf", log::Level::Debug) {
        PrintLevel::Debug
    } else {
        PrintLevel::Info
    };
    libbpf_rs::set_print(Some((level, forward)));
}

/// Runs `query` with libbpf's warnings demoted to debug: its failure is an
/// answer the caller handles, not something to tell the operator.
pub fn expecting_failure<T>(query: impl FnOnce() -> T) -> T {
    EXPECTED_FAILURE.with(|flag| {
        let before = flag.replace(true);
        let answer = query();
        flag.set(before);
        answer
    })
}

fn forward(level: PrintLevel, message: String) {
    let level = match level {
        PrintLevel::Warn if EXPECTED_FAILURE.with(Cell::get) => log::Level::Debug,
        PrintLevel::Warn => log::Level::Warn,
        PrintLevel::Info => log::Level::Info,
        PrintLevel::Debug => log::Level::Debug,
    };
    // libbpf prefixes its own name, which the log target already says.
    let message = message.strip_prefix("libbpf: ").unwrap_or(&message);
    log::log!(target: "libbpf", level, "{}", message.trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expecting_failure_is_scoped_and_nests() {
        assert!(!EXPECTED_FAILURE.with(Cell::get));
        let inner = expecting_failure(|| {
            expecting_failure(|| ());
            EXPECTED_FAILURE.with(Cell::get)
        });
        assert!(inner, "still expected after a nested query returned");
        assert!(!EXPECTED_FAILURE.with(Cell::get));
    }
}
