//! What the guest writes to `sys.stdout` and `sys.stderr`, split into lines and bounded.

/// Which stream a line was written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// Either, by a generator closed after its query ended: for the server's log only, where
    /// what the close raises goes too.
    Log,
}

impl Stream {
    /// PostgreSQL's elog level for the stream's lines: NOTICE, WARNING, LOG_SERVER_ONLY.
    pub fn level(self) -> u8 {
        match self {
            Stream::Stdout => 18,
            Stream::Stderr => 19,
            Stream::Log => 16,
        }
    }
}

/// Output collected during one guest call; the host reports it once the call has returned.
#[derive(Debug, Default)]
pub struct Output {
    pub lines: Vec<(Stream, String)>,
    /// Bytes dropped because the call exceeded its output budget.
    pub dropped: usize,
    partial: [String; 3],
    written: usize,
    budget: usize,
}

impl Output {
    pub(crate) fn with_budget(budget: usize) -> Output {
        Output { budget, ..Output::default() }
    }

    /// Bounds what the calls from now on may write.
    pub(crate) fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    pub(crate) fn write(&mut self, stream: Stream, mut text: &str) {
        let room = self.budget.saturating_sub(self.written);
        if text.len() > room {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.dropped += text.len() - cut;
            text = &text[..cut];
        }
        self.written += text.len();
        let partial = &mut self.partial[stream as usize];
        let mut rest = text;
        while let Some(newline) = rest.find('\n') {
            partial.push_str(&rest[..newline]);
            self.lines.push((stream, std::mem::take(partial)));
            rest = &rest[newline + 1..];
        }
        partial.push_str(rest);
    }

    /// The complete lines written so far, handed over to be reported now.
    pub(crate) fn drain_lines(&mut self) -> Vec<(Stream, String)> {
        std::mem::take(&mut self.lines)
    }

    /// Ends the call: what it wrote (unterminated last lines count as lines), leaving this empty,
    /// with the same budget, for the next one.
    pub(crate) fn take(&mut self) -> Output {
        let mut done = std::mem::replace(self, Output::with_budget(self.budget));
        for (stream, partial) in [Stream::Stdout, Stream::Stderr, Stream::Log].into_iter().zip(std::mem::take(&mut done.partial)) {
            if !partial.is_empty() {
                done.lines.push((stream, partial));
            }
        }
        done
    }
}
