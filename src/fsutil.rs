//! Small file helpers shared by the modules that write files, and the one reader of the
//! kernel's random bytes.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes a file atomically: a temporary file in the same folder, fsynced, then renamed over
/// the target. A reader (or a crash) sees the old content or the new, never half of it. The
/// file is created with `mode`, so a credentials file is never readable by others, not even
/// for an instant.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(content)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Where the kernel's CSPRNG is read.
pub const URANDOM: &str = "/dev/urandom";

/// Fills `buf` from the kernel's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    fs::File::open(URANDOM)?.read_exact(buf)
}

/// Fills `buf` with random bytes for an id or a nonce: from the kernel, or, where
/// `/dev/urandom` cannot be read, from the time and the process id (enough to keep ids
/// apart and a token from being reused, never used for a secret).
pub fn unique_bytes(buf: &mut [u8]) {
    if random_bytes(buf).is_ok() {
        return;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    for (i, b) in t
        .to_le_bytes()
        .iter()
        .chain(std::process::id().to_le_bytes().iter())
        .enumerate()
        .take(buf.len())
    {
        buf[i] = *b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_content_with_the_given_mode() {
        let dir = std::env::temp_dir().join(format!("gi-fsutil-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.cnf");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        fs::remove_dir_all(&dir).unwrap();
    }
}
