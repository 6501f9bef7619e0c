//! The terminal for `accel top`: keys read one at a time without echo
//! (so `q` quits without Enter, and Ctrl-C arrives as a key rather than a
//! signal that would leave the terminal in that mode), restored however
//! the view ends.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::termios::{self, LocalModes, OptionalActions, Termios};

/// The terminal in key-at-a-time mode while this lives.
pub struct Raw {
    saved: Termios,
}

impl Raw {
    /// None when stdin is not a terminal.
    pub fn enter() -> Option<Raw> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        raw.local_modes
            .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG);
        termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw).ok()?;
        // Hide the cursor while the view runs.
        print!("\x1b[?25l");
        Some(Raw { saved })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &self.saved);
        println!("\x1b[?25h");
        let _ = std::io::stdout().flush();
    }
}

/// The terminal's (columns, rows); 80x24 when it does not say.
pub fn size() -> (usize, usize) {
    match termios::tcgetwinsize(std::io::stdout().as_fd()) {
        Ok(w) if w.ws_col > 0 && w.ws_row > 0 => (w.ws_col.into(), w.ws_row.into()),
        _ => (80, 24),
    }
}

/// Waits up to `timeout` for a key; true when it asks to quit (q, Q,
/// Ctrl-C, or the end of input).
pub fn quit_requested(timeout: Duration) -> bool {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    match rustix::event::poll(&mut fds, Some(&ts)) {
        Ok(n) if n > 0 => {
            let mut b = [0u8; 16];
            match rustix::io::read(fd, &mut b) {
                Ok(0) => true,
                Ok(n) => b[..n].iter().any(|c| matches!(c, b'q' | b'Q' | 3)),
                Err(_) => true,
            }
        }
        _ => false,
    }
}

/// Draws `lines` over the previous frame.
pub fn draw(lines: &[String]) {
    let mut out = String::from("\x1b[H\x1b[2J");
    for l in lines {
        out += l;
        out += "\r\n";
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
}
