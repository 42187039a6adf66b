//! File names of a checkpoint (`naming.cc`) and turning what a user typed into the files to
//! open: a V2 prefix, or the table files of a V1 checkpoint.
//!
//! TensorFlow decides the format by looking at the files (`CheckpointReader`, `RestoreV2`,
//! `latest_checkpoint`): a prefix whose `<prefix>.index` exists is a V2 bundle; otherwise the
//! prefix is a glob pattern (`Env::GetMatchingPaths`) and every file it matches is one V1
//! table. [`locate`] follows that rule and accepts a few more forms (docs/format.md §3.11,
//! §5.3, §8.1): a directory with a `checkpoint` state file, a SavedModel directory, any file
//! of the checkpoint (`.index`, `.meta`, `.data-*`, one V1 shard), and the prefix of sharded
//! V1 files.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, ShortPath};
use crate::index::MAX_SHARDS;
use crate::state;

/// `<prefix>.index`.
pub fn index_path(prefix: &Path) -> PathBuf {
    with_suffix(prefix, ".index")
}

/// `<prefix>.data-%05d-of-%05d`.
pub fn data_path(prefix: &Path, shard: u32, num_shards: u32) -> PathBuf {
    with_suffix(prefix, &format!(".data-{shard:05}-of-{num_shards:05}"))
}

/// `<prefix>.meta` (written by TF1's Saver beside the bundle).
pub fn meta_path(prefix: &Path) -> PathBuf {
    with_suffix(prefix, ".meta")
}

pub(crate) fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// If `name` is `<stem>.data-NNNNN-of-NNNNN` (digits of any width), returns `<stem>`.
pub(crate) fn strip_data_suffix(name: &str) -> Option<&str> {
    let at = name.rfind(".data-")?;
    let rest = name.get(at + ".data-".len()..)?;
    let (a, b) = rest.split_once("-of-")?;
    if all_digits(a) && all_digits(b) {
        name.get(..at)
    } else {
        None
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// If `name` is a V1 shard name `<stem>-NNNNN-of-MMMMM` (as TensorFlow's `ShardedFilename`
/// writes it, digits of any width), returns `(stem, shard, num_shards)`. A bundle's data file
/// (`<prefix>.data-NNNNN-of-NNNNN`) is not one.
pub(crate) fn split_v1_shard(name: &str) -> Option<(&str, u32, u32)> {
    if strip_data_suffix(name).is_some() {
        return None;
    }
    let (head, n) = name.rsplit_once("-of-")?;
    let (stem, shard) = head.rsplit_once('-')?;
    if stem.is_empty() || !all_digits(shard) || !all_digits(n) {
        return None;
    }
    Some((stem, shard.parse().ok()?, n.parse().ok()?))
}

/// The `.meta` file TensorFlow's Saver writes beside a checkpoint named `prefix`
/// (`meta_graph_filename` in `saver.py`): a sharded V1 name loses its `-?????-of-NNNNN`
/// (`-[\d?]+-of-\d+`) before `.meta` is added.
pub(crate) fn meta_path_of(prefix: &Path) -> PathBuf {
    let stem = prefix
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|name| {
            let (head, n) = name.rsplit_once("-of-")?;
            let (stem, shard) = head.rsplit_once('-')?;
            let shard_ok =
                !shard.is_empty() && shard.bytes().all(|c| c.is_ascii_digit() || c == b'?');
            (shard_ok && all_digits(n) && !stem.is_empty()).then_some(stem)
        });
    match stem {
        Some(stem) => meta_path(&prefix.with_file_name(stem)),
        None => meta_path(prefix),
    }
}

/// Where a path leads: the files of one checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// A tensor bundle: `<prefix>.index` exists.
    V2 {
        /// The prefix.
        prefix: PathBuf,
    },
    /// A V1 checkpoint: one or more table files.
    V1 {
        /// The name TensorFlow gives it: the file itself, or the glob pattern of the shards
        /// (`model.ckpt-3-?????-of-00002`).
        prefix: PathBuf,
        /// The table files, sorted.
        files: Vec<PathBuf>,
        /// Shards that the `-of-N` names promise but that are not there.
        missing: Vec<PathBuf>,
    },
}

impl Location {
    pub(crate) fn prefix(&self) -> &Path {
        match self {
            Location::V2 { prefix } | Location::V1 { prefix, .. } => prefix,
        }
    }
}

/// The URL scheme of `path` (`gs` for `gs://bucket/x`), if it is a URL.
pub(crate) fn remote_scheme(path: &Path) -> Option<String> {
    let s = path.to_str()?;
    let (scheme, _) = s.split_once("://")?;
    if scheme.len() > 32 {
        return None;
    }
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then(|| scheme.to_ascii_lowercase())
}

/// Turns any of the forms a user types into the files of one checkpoint, V1 or V2:
///
/// - a V2 prefix (`<prefix>.index` exists), or any of its files (`.index`, `.meta`,
///   `.data-NNNNN-of-NNNNN`);
/// - a V1 file (`model.ckpt`), one shard of a sharded V1 checkpoint
///   (`model.ckpt-00000-of-00002`: all shards of the set are opened), their prefix
///   (`model.ckpt`, when only `model.ckpt-NNNNN-of-NNNNN` files exist), a glob pattern
///   (`model.ckpt-?????-of-00002`), or the `.meta` beside them;
/// - a directory holding a `checkpoint` state file (its latest checkpoint, V1 or V2);
/// - a SavedModel directory (`saved_model.pb` or `saved_model.pbtxt` beside `variables/`), or
///   its `saved_model.pb`: the variables bundle `variables/variables`;
/// - a directory holding exactly one `.index` file.
///
/// Errors: [`Error::RemotePath`] for URLs; [`Error::CheckpointNotFound`] saying what was
/// looked for; [`Error::StateFile`] for a malformed state file; [`Error::Io`].
pub(crate) fn locate(path: &Path) -> Result<Location> {
    if let Some(scheme) = remote_scheme(path) {
        return Err(Error::RemotePath {
            path: path.display().to_string(),
            scheme,
        });
    }
    if index_path(path).is_file() {
        return Ok(Location::V2 {
            prefix: path.to_path_buf(),
        });
    }
    if let Some(backup) = crate::commit::interrupted_write(path) {
        return Err(not_found(
            path,
            &format!(
                "a write to it was interrupted; the checkpoint that was there is kept whole as {} (read it there, or rename its files back)",
                ShortPath(&backup)
            ),
        ));
    }
    if path.is_dir() {
        return locate_dir(path);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if matches!(name, "saved_model.pb" | "saved_model.pbtxt") && path.is_file() {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        return locate_saved_model(dir);
    }
    let v2_stem = name
        .strip_suffix(".index")
        .or_else(|| strip_data_suffix(name));
    if let Some(stem) = v2_stem {
        let prefix = path.with_file_name(stem);
        if !stem.is_empty() && index_path(&prefix).is_file() {
            return Ok(Location::V2 { prefix });
        }
        if stem.is_empty() {
            return Err(not_found(path, "file name has no prefix before the suffix"));
        }
        return Err(not_found(
            path,
            &format!("{} does not exist", ShortPath(&index_path(&prefix))),
        ));
    }
    if let Some(stem) = name.strip_suffix(".meta").filter(|s| !s.is_empty()) {
        let prefix = path.with_file_name(stem);
        if let Some(found) = locate_prefix(&prefix)? {
            return Ok(found);
        }
        return Err(not_found(
            path,
            &format!(
                "no checkpoint data beside the graph: neither {} nor a V1 checkpoint {} or {} exists",
                ShortPath(&index_path(&prefix)),
                ShortPath(&prefix),
                ShortPath(&with_suffix(&prefix, "-?????-of-?????"))
            ),
        ));
    }
    if let Some(found) = locate_prefix(path)? {
        return Ok(found);
    }
    Err(not_found(
        path,
        &format!(
            "neither {} nor a directory of that name exists, nor a V1 checkpoint ({} or {})",
            ShortPath(&index_path(path)),
            ShortPath(path),
            ShortPath(&with_suffix(path, "-?????-of-?????"))
        ),
    ))
}

/// Turns a path into a V2 prefix whose `.index` exists, accepting every path form
/// [`Checkpoint::open`](crate::Checkpoint::open) does (which reads V1 checkpoints too). Kept for
/// callers that only handle bundles.
///
/// Errors: [`Error::RemotePath`] for URLs; [`Error::CheckpointNotFound`] saying what was looked
/// for, or when the path names a V1 checkpoint; [`Error::StateFile`]; [`Error::Io`].
pub fn resolve_prefix(path: &Path) -> Result<PathBuf> {
    match locate(path)? {
        Location::V2 { prefix } => Ok(prefix),
        Location::V1 { prefix, .. } => Err(not_found(
            path,
            &format!(
                "{} is a V1 checkpoint, not a tensor bundle ({} does not exist)",
                ShortPath(&prefix),
                ShortPath(&index_path(&prefix))
            ),
        )),
    }
}

/// A prefix as TensorFlow treats it: V2 when `<prefix>.index` exists, else the V1 files it
/// matches as a glob pattern; and, beyond TensorFlow, the shards `<prefix>-NNNNN-of-NNNNN`
/// when the prefix itself matches nothing. `None` when nothing is there.
pub(crate) fn locate_prefix(prefix: &Path) -> Result<Option<Location>> {
    if index_path(prefix).is_file() {
        return Ok(Some(Location::V2 {
            prefix: prefix.to_path_buf(),
        }));
    }
    let Some(name) = prefix.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    let dir = parent_dir(prefix);
    if has_glob(name) {
        let files = glob_files(&dir, name)?;
        if files.is_empty() {
            return Ok(None);
        }
        // A pattern `<stem>-?????-of-NNNNN` says how many shards there should be.
        let missing = match split_pattern_shards(name) {
            Some((stem, n)) => missing_shards(&dir, stem, n, &files),
            None => Vec::new(),
        };
        return Ok(Some(Location::V1 {
            prefix: prefix.to_path_buf(),
            files,
            missing,
        }));
    }
    if prefix.is_file() {
        // One shard of a set: open the whole set, as a `.data-*` file opens its bundle.
        if let Some((stem, _, n)) = split_v1_shard(name) {
            return Ok(Some(shard_set(&dir, stem, n)?));
        }
        return Ok(Some(Location::V1 {
            prefix: prefix.to_path_buf(),
            files: vec![prefix.to_path_buf()],
            missing: Vec::new(),
        }));
    }
    // The prefix of sharded V1 files, as the user types it (`model.ckpt` for
    // `model.ckpt-00000-of-00002`).
    let mut counts: Vec<u32> = Vec::new();
    for file in list_dir(&dir)? {
        if let Some((stem, _, n)) = split_v1_shard(&file) {
            if stem == name && !counts.contains(&n) {
                counts.push(n);
            }
        }
    }
    match counts.as_slice() {
        [] => Ok(None),
        [n] => Ok(Some(shard_set(&dir, name, *n)?)),
        _ => Err(not_found(
            prefix,
            &format!(
                "several sharded V1 checkpoints are named {name}-NNNNN-of-NNNNN (with {} shards); name one of their files",
                counts
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The V1 shards `<stem>-NNNNN-of-<n>` present in `dir`, as a location named by TensorFlow's
/// pattern `<stem>-?????-of-<n>`.
fn shard_set(dir: &Path, stem: &str, n: u32) -> Result<Location> {
    let pattern = format!("{stem}-?????-of-{n:05}");
    let mut files = Vec::new();
    for file in list_dir(dir)? {
        if let Some((s, k, m)) = split_v1_shard(&file) {
            if s == stem && m == n && k < n {
                files.push(dir.join(&file));
            }
        }
    }
    files.sort();
    let missing = missing_shards(dir, stem, n, &files);
    Ok(Location::V1 {
        prefix: dir.join(pattern),
        files,
        missing,
    })
}

/// `<stem>-NNNNN-of-<n>` names for the shards below `n` not among `files`.
fn missing_shards(dir: &Path, stem: &str, n: u32, files: &[PathBuf]) -> Vec<PathBuf> {
    if n == 0 || n as i64 > i64::from(MAX_SHARDS) {
        return Vec::new();
    }
    let mut present = vec![false; n as usize];
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some((s, k, m)) = split_v1_shard(name) {
            if s == stem && m == n {
                if let Some(p) = present.get_mut(k as usize) {
                    *p = true;
                }
            }
        }
    }
    present
        .iter()
        .enumerate()
        .filter(|(_, &p)| !p)
        .map(|(k, _)| dir.join(format!("{stem}-{k:05}-of-{n:05}")))
        .collect()
}

/// `(stem, n)` of a pattern `<stem>-?????-of-<n>`.
fn split_pattern_shards(name: &str) -> Option<(&str, u32)> {
    let (head, n) = name.rsplit_once("-of-")?;
    let (stem, shard) = head.rsplit_once('-')?;
    let ok = !stem.is_empty()
        && !has_glob(stem)
        && !shard.is_empty()
        && shard.bytes().all(|c| c == b'?' || c.is_ascii_digit())
        && all_digits(n);
    ok.then(|| Some((stem, n.parse().ok()?))).flatten()
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The UTF-8 names of the entries of `dir` (none when it does not exist).
fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// The files of `dir` whose names match the glob `pattern`, sorted.
fn glob_files(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = list_dir(dir)?
        .into_iter()
        .filter(|name| glob_match(pattern.as_bytes(), name.as_bytes()))
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

pub(crate) fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `fnmatch`-style matching of one file name: `*` (any run), `?` (one byte), `[abc]`,
/// `[a-z]`, `[!a]` / `[^a]`, and `\` escaping the next byte (TensorFlow's `Env::MatchPath`).
pub(crate) fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern position after it, name position).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => match class_match(pattern, p, name[n]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // No closing bracket: a literal `[`.
                None => (name[n] == b'[').then_some(p + 1),
            },
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == name[n]).then_some(p + 2),
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                p = sp;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Matches byte `c` against the class starting at `pattern[at] == b'['`: whether it matches
/// and the position after the class, or `None` when the class is not closed.
fn class_match(pattern: &[u8], at: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *pattern.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = *pattern.get(i + 2)?;
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
}

fn not_found(path: &Path, reason: &str) -> Error {
    Error::CheckpointNotFound {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Whether `path` is a file ending with the table magic number (docs/format.md §2.6): what a
/// V1 checkpoint file looks like from outside. Reads 8 bytes; any error means no.
fn ends_like_a_table(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == state::STATE_FILE_NAME
        || name.ends_with(".meta")
        || strip_data_suffix(name).is_some()
    {
        return false;
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut magic = [0u8; 8];
    let ok = file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() >= ckpt_table::FOOTER_LEN as u64)
        && file.seek(SeekFrom::End(-8)).is_ok()
        && file.read_exact(&mut magic).is_ok();
    ok && u64::from_le_bytes(magic) == ckpt_table::TABLE_MAGIC
}

/// Whether `dir` is a SavedModel directory (`saved_model.pb` or `saved_model.pbtxt`).
fn is_saved_model(dir: &Path) -> bool {
    dir.join("saved_model.pb").is_file() || dir.join("saved_model.pbtxt").is_file()
}

/// The variables of a SavedModel: the bundle `variables/variables` (docs/format.md §8.1).
fn locate_saved_model(dir: &Path) -> Result<Location> {
    let prefix = dir.join("variables").join("variables");
    if index_path(&prefix).is_file() {
        return Ok(Location::V2 { prefix });
    }
    Err(not_found(
        dir,
        &format!(
            "a SavedModel directory without variables: {} does not exist",
            ShortPath(&index_path(&prefix))
        ),
    ))
}

fn locate_dir(dir: &Path) -> Result<Location> {
    if is_saved_model(dir) {
        return locate_saved_model(dir);
    }
    let state_path = dir.join(state::STATE_FILE_NAME);
    if state_path.is_file() {
        return locate_from_state(dir);
    }
    // No state file: accept a directory that holds exactly one bundle.
    let names = list_dir(dir)?;
    let mut found = Vec::new();
    for name in &names {
        if let Some(stem) = name.strip_suffix(".index") {
            // The backup an interrupted write leaves is not a checkpoint of its own here.
            if !stem.is_empty() && !stem.ends_with(crate::commit::BACKUP_SUFFIX) {
                found.push(dir.join(stem));
            }
        }
    }
    if found.is_empty() {
        // Or exactly one V1 checkpoint: a set of shards (a TF Serving `export-00000-of-00001`),
        // or a file that is a table (TensorFlow's V1 files have no suffix to go by).
        let mut v1: Vec<Location> = Vec::new();
        for name in &names {
            let stem = match split_v1_shard(name) {
                Some((stem, _, _)) => stem,
                None if ends_like_a_table(&dir.join(name)) => name.as_str(),
                None => continue,
            };
            if let Some(location) = locate_prefix(&dir.join(stem))? {
                if !v1.contains(&location) {
                    v1.push(location);
                }
            }
        }
        if v1.len() == 1 {
            return Ok(v1.remove(0));
        }
        if v1.len() > 1 {
            return Err(not_found(
                dir,
                &format!(
                    "directory has no `checkpoint` state file and {} V1 checkpoints; name one",
                    v1.len()
                ),
            ));
        }
    }
    match found.len() {
        1 => Ok(Location::V2 {
            prefix: found.remove(0),
        }),
        0 => Err(not_found(
            dir,
            "directory has no `checkpoint` state file and no .index file",
        )),
        n => Err(not_found(
            dir,
            &format!("directory has no `checkpoint` state file and {n} .index files; name one"),
        )),
    }
}

/// The latest checkpoint a directory's state file names: at the recorded path (joined onto
/// the directory when relative, as TensorFlow does), or, when nothing is there, at the same
/// path with Windows separators read as `/`, or under the same file name inside the
/// directory (a directory moved, copied, or written on another machine).
pub(crate) fn locate_from_state(dir: &Path) -> Result<Location> {
    let recorded = state::read_recorded_latest(dir)?;
    let candidates = state::candidates(dir, &recorded);
    for candidate in &candidates {
        if let Some(found) = locate_prefix(candidate)? {
            return Ok(found);
        }
    }
    let looked: Vec<String> = candidates
        .iter()
        .map(|c| ShortPath(&index_path(c)).to_string())
        .collect();
    Err(not_found(
        dir,
        &format!(
            "{} names \"{}\", but no checkpoint is there: neither {} exists, nor a V1 checkpoint of {}",
            ShortPath(&dir.join(state::STATE_FILE_NAME)),
            ShortPath(Path::new(&recorded)),
            looked.join(" nor "),
            if candidates.len() > 1 { "those names" } else { "that name" }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = Path::new("dir/model.ckpt-1000");
        assert_eq!(index_path(p), Path::new("dir/model.ckpt-1000.index"));
        assert_eq!(
            data_path(p, 1, 2),
            Path::new("dir/model.ckpt-1000.data-00001-of-00002")
        );
        assert_eq!(meta_path(p), Path::new("dir/model.ckpt-1000.meta"));
        assert_eq!(
            data_path(p, 123456, 1234567),
            Path::new("dir/model.ckpt-1000.data-123456-of-1234567")
        );
    }

    #[test]
    fn data_suffix() {
        assert_eq!(
            strip_data_suffix("m.ckpt.data-00000-of-00001"),
            Some("m.ckpt")
        );
        assert_eq!(strip_data_suffix("a.data-1-of-2"), Some("a"));
        assert_eq!(strip_data_suffix("a.data-x-of-2"), None);
        assert_eq!(strip_data_suffix("a.data-1-of-"), None);
        assert_eq!(strip_data_suffix("a.index"), None);
    }

    #[test]
    fn v1_shard_names() {
        assert_eq!(
            split_v1_shard("model.ckpt-3-00001-of-00002"),
            Some(("model.ckpt-3", 1, 2))
        );
        assert_eq!(
            split_v1_shard("export-00000-of-00001"),
            Some(("export", 0, 1))
        );
        assert_eq!(split_v1_shard("model.ckpt-3"), None);
        assert_eq!(split_v1_shard("-00000-of-00001"), None);
        assert_eq!(split_v1_shard("ckpt.data-00000-of-00001"), None);
        assert_eq!(split_v1_shard("a-0x-of-1"), None);
        assert_eq!(
            split_pattern_shards("model.ckpt-3-?????-of-00002"),
            Some(("model.ckpt-3", 2))
        );
        assert_eq!(split_pattern_shards("m*-?????-of-00002"), None);
        assert_eq!(
            meta_path_of(Path::new("d/model.ckpt-3-?????-of-00002")),
            Path::new("d/model.ckpt-3.meta")
        );
        assert_eq!(
            meta_path_of(Path::new("d/export-00000-of-00001")),
            Path::new("d/export.meta")
        );
        assert_eq!(
            meta_path_of(Path::new("d/model.ckpt")),
            Path::new("d/model.ckpt.meta")
        );
    }

    #[test]
    fn globs_match_like_fnmatch() {
        let m = |p: &str, n: &str| glob_match(p.as_bytes(), n.as_bytes());
        assert!(m(
            "model.ckpt-3-?????-of-00002",
            "model.ckpt-3-00001-of-00002"
        ));
        assert!(!m(
            "model.ckpt-3-?????-of-00002",
            "model.ckpt-3-0001-of-00002"
        ));
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*.index", "m.ckpt.index"));
        assert!(m("[ab]x", "bx"));
        assert!(!m("[!ab]x", "bx"));
        assert!(m("[^ab]x", "cx"));
        assert!(m("[0-9]", "7"));
        assert!(!m("[0-9]", "a"));
        assert!(m("[]]", "]"));
        assert!(m("a[", "a["));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(!m("abc", "abcd"));
        assert!(m("**a", "a"));
    }

    #[test]
    fn urls_are_remote() {
        assert_eq!(
            remote_scheme(Path::new("gs://b/m.ckpt")).as_deref(),
            Some("gs")
        );
        assert_eq!(remote_scheme(Path::new("S3://b/m")).as_deref(), Some("s3"));
        assert_eq!(
            remote_scheme(Path::new("hdfs://nn:8020/x")).as_deref(),
            Some("hdfs")
        );
        assert_eq!(remote_scheme(Path::new("runs/model.ckpt")), None);
        assert_eq!(remote_scheme(Path::new("a:b//c")), None);
        assert_eq!(remote_scheme(Path::new("1x://y")), None);
    }
}
