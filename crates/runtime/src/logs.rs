//! CRI-format container log files, as the kubelet reads them.
//!
//! Each line is `<RFC3339Nano UTC> <stream> <tag> <text>\n`, where the tag is `F` for a
//! full line and `P` for a partial one. This follows containerd's CRI log writer:
//! - a line longer than [`MAX_LINE`] (16 KiB, containerd's `max_container_log_line_size`)
//!   is cut into `P` chunks of exactly that size, the rest ending the line as `F`;
//! - the newline itself is not written as text;
//! - output that ends without a newline is written as an `F` record at end of stream, as
//!   containerd does (its last `ReadLine` is not a prefix): the reader then sees one
//!   newline that the container never wrote, which is what the kubelet shows too.
//!   containerd drops a `\r` before the newline (Go's `bufio.ReadLine`); hoist keeps
//!   every byte instead.
//!
//! Two streams (stdout, stderr) share one file; a [`LogFile`] behind a mutex serialises
//! whole records so lines never interleave mid-record.
//!
//! Rotation ([`Rotation`], 10 MiB × 5 files by default, the kubelet's
//! `containerLogMaxSize` and `containerLogMaxFiles`) is done by the writer itself: once the
//! file reaches the size after a whole record, it is renamed to `<file>.<timestamp>`, a new
//! file takes its place, and the oldest rotated files go so that at most `max_files` remain.
//! The kubelet does the renaming and asks containerd to reopen; writing in one place loses
//! no line between the two. A [`Follower`] moves on to the new file once the old one is
//! drained.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::time;

/// The longest text a single log record carries.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// When a log file is rotated, and how many files of one container's run are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// Bytes after which the file is rotated.
    pub max_size: u64,
    /// Files kept, the one being written included (at least 1: then rotated files are
    /// removed at once).
    pub max_files: usize,
}

impl Default for Rotation {
    /// The kubelet's defaults: 10 MiB, 5 files.
    fn default() -> Self {
        Rotation {
            max_size: 10 * 1024 * 1024,
            max_files: 5,
        }
    }
}

struct Writer {
    out: BufWriter<File>,
    path: PathBuf,
    written: u64,
    rotation: Option<Rotation>,
}

impl Writer {
    fn open(path: &Path, rotation: Option<Rotation>) -> io::Result<Writer> {
        let file = File::options().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(Writer {
            out: BufWriter::with_capacity(64 * 1024, file),
            path: path.to_path_buf(),
            written,
            rotation,
        })
    }

    /// Renames the full file aside, starts a new one, and removes the oldest rotated files.
    fn rotate(&mut self, rotation: Rotation) -> io::Result<()> {
        self.out.flush()?;
        let rotated = rotated_name(&self.path);
        std::fs::rename(&self.path, &rotated)?;
        *self = Writer::open(&self.path, Some(rotation))?;
        let old = rotated_files(&self.path);
        let excess = old
            .len()
            .saturating_sub(rotation.max_files.saturating_sub(1));
        for f in &old[..excess] {
            let _ = std::fs::remove_file(f);
        }
        Ok(())
    }
}

/// `<path>.<UTC time to the nanosecond>`: sorts by age as text.
fn rotated_name(path: &Path) -> PathBuf {
    let stamp: String = time::now().chars().filter(|c| c.is_ascii_digit()).collect();
    let (date, rest) = stamp.split_at(8.min(stamp.len()));
    let (clock, nanos) = rest.split_at(6.min(rest.len()));
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{date}-{clock}.{nanos}"));
    PathBuf::from(name)
}

/// The rotated files of the log at `path`, oldest first.
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// An open log file shared by a container's two streams.
#[derive(Clone)]
pub struct LogFile {
    out: Arc<Mutex<Writer>>,
}

impl LogFile {
    /// Opens (appending, creating if needed) the log file at `path`; it is never rotated.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_rotating(path, None)
    }

    /// Opens the log file at `path`, rotated as `rotation` says (see the module header).
    pub fn open_rotating(path: &Path, rotation: Option<Rotation>) -> io::Result<Self> {
        Ok(Self {
            out: Arc::new(Mutex::new(Writer::open(path, rotation)?)),
        })
    }

    fn record(&self, stream: Stream, partial: bool, text: &[u8]) -> io::Result<()> {
        let tag = if partial { "P" } else { "F" };
        let head = format!("{} {} {tag} ", time::now(), stream.as_str());
        let mut w = self.out.lock().unwrap_or_else(|e| e.into_inner());
        w.out.write_all(head.as_bytes())?;
        w.out.write_all(text)?;
        w.out.write_all(b"\n")?;
        w.written += (head.len() + text.len() + 1) as u64;
        if let Some(r) = w.rotation
            && w.written >= r.max_size
        {
            w.rotate(r)?;
        }
        Ok(())
    }

    /// Writes buffered records to the file.
    pub fn flush(&self) -> io::Result<()> {
        self.out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .out
            .flush()
    }

    /// Copies `reader` into the log as `stream` until end of file, splitting lines as the
    /// module header says. Flushes after each read so that readers see lines promptly.
    pub fn copy_stream(&self, stream: Stream, mut reader: impl Read) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        // The current line's bytes not yet written (always shorter than MAX_LINE).
        let mut pending: Vec<u8> = Vec::with_capacity(MAX_LINE);
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut data = &buf[..n];
            while !data.is_empty() {
                let room = MAX_LINE - pending.len();
                match data.iter().position(|&b| b == b'\n') {
                    Some(i) if i <= room => {
                        pending.extend_from_slice(&data[..i]);
                        self.record(stream, false, &pending)?;
                        pending.clear();
                        data = &data[i + 1..];
                    }
                    _ if data.len() > room => {
                        // The line reaches the limit: a full chunk goes out as partial,
                        // unless a newline follows at once, which makes it the line's end.
                        pending.extend_from_slice(&data[..room]);
                        data = &data[room..];
                        if data.first() == Some(&b'\n') {
                            self.record(stream, false, &pending)?;
                            data = &data[1..];
                        } else {
                            self.record(stream, true, &pending)?;
                        }
                        pending.clear();
                    }
                    _ => {
                        pending.extend_from_slice(data);
                        data = &[];
                    }
                }
            }
            self.flush()?;
        }
        if !pending.is_empty() {
            self.record(stream, false, &pending)?;
        }
        self.flush()
    }
}

/// One parsed record of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub timestamp: String,
    pub stream: Stream,
    pub partial: bool,
    pub text: Vec<u8>,
}

/// Parses one log line (without its newline); `None` if it is not a CRI record.
pub fn parse_record(line: &[u8]) -> Option<Record> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let timestamp = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    let text = parts.next().unwrap_or_default().to_vec();
    Some(Record {
        timestamp,
        stream,
        partial,
        text,
    })
}

/// Reassembles a stream's bytes from log records as the kubelet does: the text of each
/// record, plus a newline after each full (`F`) one.
pub fn reassemble<'a>(records: impl IntoIterator<Item = &'a Record>, stream: Stream) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records.into_iter().filter(|r| r.stream == stream) {
        out.extend_from_slice(&r.text);
        if !r.partial {
            out.push(b'\n');
        }
    }
    out
}

/// Reads a CRI log file as it grows, one complete record at a time (a line still being
/// written waits for its newline), moving on to the new file when it is rotated.
pub struct Follower {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
}

impl Follower {
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_at(path, 0)
    }

    /// Follows `path` from byte `offset` on.
    pub fn open_at(path: &Path, offset: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        file.seek(io::SeekFrom::Start(offset))?;
        Ok(Follower {
            path: path.to_path_buf(),
            file,
            pending: Vec::new(),
        })
    }

    /// Whether the file at the path is no longer the one open (it was rotated).
    fn rotated(&self) -> bool {
        let (Ok(open), Ok(now)) = (self.file.metadata(), std::fs::metadata(&self.path)) else {
            return false;
        };
        (open.dev(), open.ino()) != (now.dev(), now.ino())
    }

    /// The records appended since the last call; lines that are not CRI records are
    /// skipped.
    pub fn read_new(&mut self) -> io::Result<Vec<Record>> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            // Checked before reading, so that what the old file got last is read first.
            let rotated = self.rotated();
            loop {
                let n = self.file.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                self.pending.extend_from_slice(&chunk[..n]);
            }
            if !rotated {
                break;
            }
            self.file = File::open(&self.path)?;
        }
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let complete: Vec<u8> = self.pending.drain(..=end).collect();
        Ok(complete
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(parse_record)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(input: &[u8]) -> Vec<Record> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = LogFile::open(&path).unwrap();
        log.copy_stream(Stream::Stdout, input).unwrap();
        let text = std::fs::read(&path).unwrap();
        let records: Vec<Record> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| parse_record(l).expect("a CRI record"))
            .collect();
        let mut expected = input.to_vec();
        if !input.is_empty() && !input.ends_with(b"\n") {
            expected.push(b'\n');
        }
        assert_eq!(reassemble(&records, Stream::Stdout), expected);
        records
    }

    #[test]
    fn follower_returns_only_complete_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "").unwrap();
        let mut f = Follower::open(&path).unwrap();
        let mut file = File::options().append(true).open(&path).unwrap();
        file.write_all(b"2024-01-01T00:00:00Z stdout F one\n2024-01-01T00:00:00Z std")
            .unwrap();
        let first = f.read_new().unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].text, b"one");
        file.write_all(b"err P two\n").unwrap();
        let second = f.read_new().unwrap();
        assert_eq!(
            (second[0].stream, second[0].partial),
            (Stream::Stderr, true)
        );
        assert!(f.read_new().unwrap().is_empty());
    }

    #[test]
    fn rotation_keeps_max_files_and_the_follower_reads_across() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let rotation = Rotation {
            max_size: 200,
            max_files: 3,
        };
        let log = LogFile::open_rotating(&path, Some(rotation)).unwrap();
        let mut follower = Follower::open(&path).unwrap();
        let mut seen = Vec::new();
        for i in 0..40 {
            log.copy_stream(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
            seen.extend(follower.read_new().unwrap());
        }
        let texts: Vec<String> = seen
            .iter()
            .map(|r| String::from_utf8(r.text.clone()).unwrap())
            .collect();
        let want: Vec<String> = (0..40).map(|i| format!("line {i}")).collect();
        assert_eq!(texts, want, "every line once, in order, across rotations");
        assert_eq!(rotated_files(&path).len(), 2);
        assert!(std::fs::metadata(&path).unwrap().len() < 200);
    }

    #[test]
    fn lines_are_full_records() {
        let r = roundtrip(b"one\ntwo\n\nthree\n");
        let texts: Vec<_> = r.iter().map(|r| (r.text.as_slice(), r.partial)).collect();
        assert_eq!(
            texts,
            vec![
                (&b"one"[..], false),
                (b"two", false),
                (b"", false),
                (b"three", false)
            ]
        );
    }

    #[test]
    fn long_lines_split_into_partials_of_16k() {
        let mut input = vec![b'x'; MAX_LINE * 2 + 5];
        input.push(b'\n');
        let r = roundtrip(&input);
        assert_eq!(r.len(), 3);
        assert!(r[0].partial && r[1].partial && !r[2].partial);
        assert_eq!(r[0].text.len(), MAX_LINE);
        assert_eq!(r[2].text.len(), 5);
    }

    #[test]
    fn exactly_16k_line_is_one_full_record() {
        let mut input = vec![b'y'; MAX_LINE];
        input.push(b'\n');
        let r = roundtrip(&input);
        assert_eq!(r.len(), 1);
        assert!(!r[0].partial);
    }

    #[test]
    fn trailing_text_without_newline_ends_as_full_record() {
        let r = roundtrip(b"done\nno newline");
        assert_eq!(r.len(), 2);
        assert!(!r[1].partial);
        assert_eq!(r[1].text, b"no newline");
    }
}
