//! Where results go, checked before a run and written all at once after it.
//!
//! A run's files are written into a staging folder beside the target and then moved into place,
//! so a run killed while simulating or writing leaves the earlier results as they were and no
//! half-written file; and a target that cannot be written is refused before the simulation, not
//! after it.

use crate::report::{self, Exporter, Report};
use crate::scenario::folder_of;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Files a results folder may hold besides the exporters': a report of its results (which a
/// new run must not leave behind to describe the old ones) and the partial files of older
/// versions, which wrote in place.
fn is_ours(name: &str, exporters: &[Box<dyn Exporter>]) -> bool {
    exporters.iter().any(|e| e.file_name() == name)
        || report::html::is_report_file(name)
        || (name.starts_with('.') && name.ends_with(".partial"))
}

/// Fails unless `dir` can become a results folder: it is a folder or does not exist yet, and the
/// nearest existing folder above it is writable (tried by creating and removing a folder in it).
/// Creates nothing that stays.
pub fn check_dir(dir: &Path) -> io::Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "it exists and is not a folder",
        ));
    }
    check_writable(nearest_existing(dir)?.as_path())
}

/// Fails unless `file` can be written: it is not a folder, and the nearest existing folder above
/// it is writable.
pub fn check_file(file: &Path) -> io::Result<()> {
    if file.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a folder",
        ));
    }
    check_writable(nearest_existing(folder_of(file))?.as_path())
}

/// The folder itself if it exists, else the closest ancestor that does (which must be a folder).
fn nearest_existing(path: &Path) -> io::Result<PathBuf> {
    let mut current = if path.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        path.to_path_buf()
    };
    loop {
        if current.exists() {
            if current.is_dir() {
                return Ok(current);
            }
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a folder", current.display()),
            ));
        }
        current = match current.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
    }
}

fn check_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".statesim-probe-{}", std::process::id()));
    std::fs::create_dir(&probe)?;
    std::fs::remove_dir(&probe)
}

/// A folder beside `target` that no other process picks: `.NAME.staging-PID-N`.
fn staging_dir(target: &Path) -> io::Result<PathBuf> {
    let parent = folder_of(target);
    std::fs::create_dir_all(parent)?;
    let name = target
        .file_name()
        .map_or("results".into(), |n| n.to_string_lossy().into_owned());
    for attempt in 0..100 {
        let dir = parent.join(format!(".{name}.staging-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other("no free name for a staging folder"))
}

/// Writes every exporter's file for `report` into `target`, all at once: staged beside it, then
/// moved in. A target that holds nothing but statesim's files is replaced whole (two renames);
/// one that holds other files too keeps them, and only statesim's files are replaced or, where
/// this run has none (no faults, no sweep), removed, so no file of an earlier run is left to
/// mix with this one.
pub fn write_results(
    report: &Report,
    target: &Path,
    exporters: &[Box<dyn Exporter>],
) -> io::Result<Vec<PathBuf>> {
    let staging = staging_dir(target)?;
    let staged = match report::write_files(report, &staging, exporters) {
        Ok(staged) => staged,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    let names: Vec<std::ffi::OsString> = staged
        .iter()
        .filter_map(|path| path.file_name().map(ToOwned::to_owned))
        .collect();
    let moved = move_into_place(&staging, target, &names, exporters);
    if moved.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    moved?;
    Ok(names.iter().map(|name| target.join(name)).collect())
}

fn move_into_place(
    staging: &Path,
    target: &Path,
    names: &[std::ffi::OsString],
    exporters: &[Box<dyn Exporter>],
) -> io::Result<()> {
    if !target.exists() {
        return std::fs::rename(staging, target);
    }
    let mut foreign = false;
    for entry in std::fs::read_dir(target)? {
        let name = entry?.file_name();
        if !is_ours(&name.to_string_lossy(), exporters) {
            foreign = true;
        }
    }
    if !foreign {
        let staging_name = staging
            .file_name()
            .map_or("staging".into(), |n| n.to_string_lossy().into_owned());
        let old = staging.with_file_name(format!("{staging_name}.old"));
        std::fs::rename(target, &old)?;
        if let Err(error) = std::fs::rename(staging, target) {
            // Put the earlier results back rather than leave nothing.
            let _ = std::fs::rename(&old, target);
            return Err(error);
        }
        return std::fs::remove_dir_all(&old);
    }
    for name in names {
        std::fs::rename(staging.join(name), target.join(name))?;
    }
    for entry in std::fs::read_dir(target)? {
        let entry = entry?;
        let name = entry.file_name();
        let stale = is_ours(&name.to_string_lossy(), exporters) && !names.contains(&name);
        if stale && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
        }
    }
    std::fs::remove_dir(staging)
}

/// Writes `text` to `path` through a temporary file beside it and a rename.
pub fn write_file(path: &Path, text: &str) -> io::Result<()> {
    let parent = folder_of(path);
    std::fs::create_dir_all(parent)?;
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let written = std::fs::File::create(&partial).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&partial, path)) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

/// Whether two paths name the same folder (either may not exist yet).
pub fn same_place(a: &Path, b: &Path) -> bool {
    fn resolved(path: &Path) -> Option<PathBuf> {
        if let Ok(path) = path.canonicalize() {
            return Some(path);
        }
        Some(folder_of(path).canonicalize().ok()?.join(path.file_name()?))
    }
    match (resolved(a), resolved(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// Prints `text` on stdout. A reader that went away (`statesim run | head`) is not an error:
/// the rest of stdout is dropped. Any other failure (a full disk) is.
pub fn print_stdout(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_same_folder_whether_or_not_it_exists() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        std::fs::create_dir(dir.join("x")).unwrap();
        assert!(same_place(&dir.join("x/../x"), &dir.join("x")));
        assert!(same_place(&dir.join("x/../new"), &dir.join("new")));
        assert!(!same_place(&dir.join("x"), &dir.join("new")));
    }
}
