//! Pull progress on stderr: a bar per layer on a terminal, plain lines every few seconds
//! otherwise (logs, pipes, CI).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use image::{LayerFetch, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use oci::{Descriptor, Digest};

/// The progress reporter that suits stderr.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bars::default())
    } else {
        Box::new(Lines::default())
    }
}

/// Sizes as docker prints them: decimal units, one decimal.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

fn describe(how: LayerFetch) -> &'static str {
    match how {
        LayerFetch::Present => "already present",
        LayerFetch::FromContentStore => "unpacked from the content store",
        LayerFetch::Downloaded { resumed_from: 0 } => "pulled",
        LayerFetch::Downloaded { .. } => "pulled (resumed)",
    }
}

/// A progress bar per layer, for a terminal.
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    bars: Mutex<Vec<ProgressBar>>,
}

impl Progress for Bars {
    fn resolved(&self, _digest: &Digest, layers: &[Descriptor]) {
        let style =
            ProgressStyle::with_template("{prefix} [{bar:30}] {bytes:>9}/{total_bytes:9} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        for layer in layers {
            let bar = self.multi.add(ProgressBar::new(layer.size));
            bar.set_style(style.clone());
            bar.set_prefix(short(&layer.digest));
            bars.push(bar);
        }
    }

    fn layer_bytes(&self, index: usize, bytes: u64) {
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(index)
        {
            bar.inc(bytes);
        }
    }

    fn layer_done(&self, index: usize, how: LayerFetch) {
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(index)
        {
            bar.set_position(bar.length().unwrap_or(0));
            bar.finish_with_message(describe(how));
        }
    }
}

/// Plain lines for logs and pipes: one per finished layer, and the bytes so far at most
/// every few seconds.
struct Lines {
    state: Mutex<LinesState>,
}

struct LinesState {
    layers: Vec<(Digest, u64)>,
    received: u64,
    last: Instant,
}

impl Default for Lines {
    fn default() -> Self {
        let state = LinesState {
            layers: Vec::new(),
            received: 0,
            last: Instant::now(),
        };
        Lines {
            state: Mutex::new(state),
        }
    }
}

const LINE_EVERY: Duration = Duration::from_secs(2);

impl Progress for Lines {
    fn resolved(&self, digest: &Digest, layers: &[Descriptor]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.layers = layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
        let total: u64 = layers.iter().map(|l| l.size).sum();
        eprintln!(
            "resolved {digest}: {} layers, {}",
            layers.len(),
            human_size(total)
        );
    }

    fn layer_bytes(&self, _index: usize, bytes: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.received += bytes;
        if state.last.elapsed() >= LINE_EVERY {
            state.last = Instant::now();
            let total: u64 = state.layers.iter().map(|l| l.1).sum();
            eprintln!(
                "received {} of {}",
                human_size(state.received),
                human_size(total)
            );
        }
    }

    fn layer_done(&self, index: usize, how: LayerFetch) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((digest, size)) = state.layers.get(index) {
            eprintln!(
                "layer {} ({}): {}",
                short(digest),
                human_size(*size),
                describe(how)
            );
        }
    }
}
