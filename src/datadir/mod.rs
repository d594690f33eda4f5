//! The datadir: what state it is in, and turning an empty one into a new database.
//!
//! The rule that matters most: an existing datadir is never wiped, overwritten or
//! initialised again. A fresh datadir is initialised behind two markers: one written
//! before anything else, one written after everything else. A crash (or a SIGTERM) half-way
//! leaves the first without the second, which is recognised on the next start as galera-init's
//! own unfinished work and done again, instead of being mistaken for a database.

pub mod init;
pub mod recover;
pub mod sql;

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

use crate::galera::grastate::{self, GRASTATE_FILE, GraState};

/// The file-system layout of the image. Tests point it elsewhere; the binary uses
/// [`Paths::standard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The datadir, the container's volume.
    pub datadir: PathBuf,
    /// mariadbd's runtime folder (socket, pid file), on the container's tmpfs `/run`.
    pub run_dir: PathBuf,
    /// mariadbd's unix socket.
    pub socket: PathBuf,
    /// The config file galera-init writes.
    pub galera_config: PathBuf,
    /// Scripts run once on a fresh datadir.
    pub initdb_dir: PathBuf,
}

impl Paths {
    /// The paths of the Debian packages and of the official image.
    pub fn standard() -> Paths {
        Paths {
            datadir: "/var/lib/mysql".into(),
            run_dir: "/run/mysqld".into(),
            socket: "/run/mysqld/mysqld.sock".into(),
            galera_config: crate::galera::CONFIG_PATH.into(),
            initdb_dir: "/docker-entrypoint-initdb.d".into(),
        }
    }
}

/// Written before a fresh datadir is initialised.
pub const INIT_STARTED: &str = ".galera-init-initializing";
/// Written after the initialisation has completed, last.
pub const INIT_DONE: &str = ".galera-init-initialized";
/// Holds the generated root password of `MYSQL_RANDOM_ROOT_PASSWORD`, mode 0600.
pub const RANDOM_PASSWORD_FILE: &str = ".galera-init-root-password";

/// The operator's one-shot override: an empty file of this name in the datadir makes the
/// node bootstrap (see the README). galera-init removes it once the node has started.
pub const FORCE_BOOTSTRAP_FILE: &str = "force-bootstrap";

/// Entries a fresh volume may hold that are not data (galera-init's record alone says
/// nothing: only data votes).
const IGNORED: &[&str] = &[
    "lost+found",
    FORCE_BOOTSTRAP_FILE,
    crate::record::RECORD_FILE,
];
/// The marker the SST scripts keep in the joiner's datadir while a transfer runs.
pub const SST_IN_PROGRESS: &str = "sst_in_progress";

/// Entries that show a datadir holds MariaDB data, whoever created it.
const DATA_SIGNS: &[&str] = &["mysql", "ibdata1", GRASTATE_FILE, "ib_logfile0"];

/// Left in the datadir by galera-init just before a node that holds data starts to join a
/// running component, and removed once it is Synced. A full state transfer destroys it
/// before it changes anything else (rsync's SST first syncs the datadir's top-level folders
/// with `--delete`; mariabackup's clears the datadir before it writes the new data), while
/// an IST never touches it. So after a crash, an SST script's marker (`sst_in_progress`)
/// beside this folder means the transfer was still an IST handshake and the data is intact;
/// the marker without it means a full transfer had begun. It is a folder because only
/// folders are in the first step of rsync's transfer; `ignore_db_dirs` keeps it out of
/// `SHOW DATABASES`.
pub const JOIN_MARK: &str = ".galera-init-joining";

/// Why a datadir holds no usable data although it is not empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// galera-init's initialisation did not finish (or it was a node's preparation while
    /// an election settled).
    Init,
    /// A full state transfer into this node began and did not finish.
    Transfer,
}

/// What galera-init finds in the datadir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataState {
    /// Empty (a new volume): a bootstrapping node initialises it; a joiner lets SST fill it.
    Fresh,
    /// Something galera-init or a state transfer began and did not finish: nothing in it was
    /// ever served, so it is cleared (and initialised again, or filled by SST).
    Interrupted(Unfinished),
    /// It holds a database. `grastate` is its Galera state, when the file exists.
    Existing {
        /// The parsed `grastate.dat`, if present.
        grastate: Option<GraState>,
    },
    /// It holds a database, but `grastate.dat` cannot be parsed (a power loss while Galera
    /// rewrote it in place, or a server that stopped before Galera wrote anything in it).
    Damaged {
        /// What is wrong with the file.
        problem: String,
    },
}

impl DataState {
    /// Whether the node has no data of its own (fresh or an unfinished init).
    pub fn is_fresh(&self) -> bool {
        matches!(self, DataState::Fresh | DataState::Interrupted(_))
    }
}

/// The datadir as read from disk, before anything interprets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The names of its entries (top level). Empty when the folder does not exist.
    pub names: Vec<String>,
    /// The text of `grastate.dat`, when there is one.
    pub grastate: Option<String>,
    /// InnoDB's system tablespace is there: `mariadbd --wsrep-recover` can read the last
    /// committed position from it (and does not create a database instead).
    pub innodb: bool,
}

impl Listing {
    /// Whether the datadir has an entry of this name.
    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

/// Errors about the datadir and its preparation.
#[derive(Debug, thiserror::Error)]
pub enum DatadirError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The datadir holds files that are not MariaDB data.
    #[error(
        "datadir {path} is not empty but holds no MariaDB data (found {entry:?}): \
         mount an empty volume or an existing MariaDB datadir there"
    )]
    Foreign {
        /// The datadir.
        path: PathBuf,
        /// One entry that is not expected there.
        entry: String,
    },
    /// The datadir cannot be written (a read-only mount, an immutable folder).
    #[error(
        "datadir {path} is not writable ({source}): mount a writable volume there; nothing \
         was changed"
    )]
    NotWritable {
        /// The datadir.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The datadir's file system is (almost) full.
    #[error(
        "datadir {path} has {free_mib} MiB free, less than the {MIN_FREE_MIB} MiB a start \
         needs: free some space or grow the volume; nothing was changed"
    )]
    Full {
        /// The datadir.
        path: PathBuf,
        /// What is free, in MiB.
        free_mib: u64,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DatadirError + '_ {
    move |source| DatadirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the datadir's entries and `grastate.dat` without changing anything.
pub fn read(datadir: &Path) -> Result<Listing, DatadirError> {
    let mut names = Vec::new();
    match fs::read_dir(datadir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(io_err(datadir))?;
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Listing::default()),
        Err(e) => return Err(io_err(datadir)(e)),
    }
    names.sort();
    let path = datadir.join(GRASTATE_FILE);
    let grastate = match fs::read(&path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(&path)(e)),
    };
    let innodb = datadir.join("ibdata1").is_file();
    Ok(Listing {
        names,
        grastate,
        innodb,
    })
}

/// What a listing of `datadir` (named in errors) says: fresh, unfinished, or data.
pub fn classify(datadir: &Path, listing: &Listing) -> Result<DataState, DatadirError> {
    let has = |n: &str| listing.has(n);
    if has(INIT_STARTED) && !has(INIT_DONE) {
        return Ok(DataState::Interrupted(Unfinished::Init));
    }
    // A state transfer into this node that never finished (its script's marker is still
    // there). The scripts make the marker for an IST too, with the old data in place: only
    // when the join mark is gone did a full transfer begin to replace it (see
    // [`JOIN_MARK`]). What a full transfer left is not data; the node joins by SST again.
    if has(SST_IN_PROGRESS) && !has(JOIN_MARK) {
        return Ok(DataState::Interrupted(Unfinished::Transfer));
    }
    if has(INIT_DONE) || DATA_SIGNS.iter().any(|s| has(s)) {
        return Ok(match &listing.grastate {
            None => DataState::Existing { grastate: None },
            Some(text) => match grastate::parse(text) {
                Ok(g) => DataState::Existing { grastate: Some(g) },
                Err(e) => DataState::Damaged {
                    problem: e.to_string(),
                },
            },
        });
    }
    match listing
        .names
        .iter()
        .find(|n| !IGNORED.contains(&n.as_str()))
    {
        None => Ok(DataState::Fresh),
        Some(entry) => Err(DatadirError::Foreign {
            path: datadir.to_path_buf(),
            entry: entry.clone(),
        }),
    }
}

/// Looks at the datadir without changing anything.
pub fn inspect(datadir: &Path) -> Result<DataState, DatadirError> {
    classify(datadir, &read(datadir)?)
}

/// The free space below which a node does not start: mariadbd and Galera need room for
/// their logs and cache files (an existing datadir that runs needs more as it grows; this
/// only catches a volume that is full already, with one clear line instead of mariadbd's
/// errors half-way).
pub const MIN_FREE_MIB: u64 = 16;

/// Checks, before anything is written, that the datadir can be written and has room: a
/// probe file is created and removed, and the file system's free space is read.
pub fn check_writable(datadir: &Path) -> Result<(), DatadirError> {
    if !datadir.exists() {
        // Created by `prepare`; its parent is checked then.
        return Ok(());
    }
    let probe = datadir.join(".galera-init-probe");
    let not_writable = |source| DatadirError::NotWritable {
        path: datadir.to_path_buf(),
        source,
    };
    fs::File::create(&probe).map_err(not_writable)?;
    fs::remove_file(&probe).map_err(not_writable)?;
    let st =
        nix::sys::statvfs::statvfs(datadir).map_err(|e| io_err(datadir)(io::Error::from(e)))?;
    let free_mib = st.blocks_available() as u64 * st.fragment_size() as u64 / (1024 * 1024);
    if free_mib < MIN_FREE_MIB {
        return Err(DatadirError::Full {
            path: datadir.to_path_buf(),
            free_mib,
        });
    }
    Ok(())
}

/// Where a `grastate.dat` that could not be parsed is kept.
pub const DAMAGED_GRASTATE: &str = "grastate.dat.damaged";

/// Replaces a `grastate.dat` that cannot be parsed with the one Galera keeps while it runs
/// (`uuid`, seqno -1, not safe to bootstrap), once `--wsrep-recover` has read the position
/// from InnoDB. The damaged file is kept as [`DAMAGED_GRASTATE`]; the new one has its owner
/// and mode. Galera itself would read the damaged file as "no state" (it skips what it
/// cannot parse), and a bootstrap would then start a new history.
pub fn replace_damaged_grastate(datadir: &Path, uuid: &str) -> Result<PathBuf, DatadirError> {
    let path = datadir.join(GRASTATE_FILE);
    let kept = datadir.join(DAMAGED_GRASTATE);
    let meta = fs::metadata(&path).map_err(io_err(&path))?;
    fs::rename(&path, &kept).map_err(io_err(&kept))?;
    let text = format!(
        "# GALERA saved state\nversion: 2.1\nuuid:    {uuid}\nseqno:   -1\nsafe_to_bootstrap: 0\n"
    );
    crate::fsutil::write_atomic(&path, text.as_bytes(), meta.mode() & 0o777)
        .map_err(io_err(&path))?;
    let _ = nix::unistd::chown(
        &path,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
    );
    Ok(kept)
}

/// Removes what an unfinished initialisation left, keeping what a volume may hold
/// (`lost+found`). Only ever called for [`DataState::Interrupted`].
pub fn clear_interrupted(datadir: &Path) -> Result<(), DatadirError> {
    for entry in fs::read_dir(datadir).map_err(io_err(datadir))? {
        let entry = entry.map_err(io_err(datadir))?;
        let name = entry.file_name();
        if IGNORED.contains(&name.to_string_lossy().as_ref()) {
            continue;
        }
        let path = entry.path();
        let result = if entry.file_type().map_err(io_err(&path))?.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        result.map_err(io_err(&path))?;
    }
    Ok(())
}

/// Files a full state transfer does not copy as data: Galera's cache, InnoDB's redo log,
/// and the server's socket and pid files.
fn not_data(name: &str) -> bool {
    name == "galera.cache"
        || name.starts_with("ib_logfile")
        || name.ends_with(".sock")
        || name.ends_with(".pid")
}

/// The bytes of data under `dir` (files only, symlinks not followed), without what a state
/// transfer does not copy as data ([`not_data`]). What cannot be read counts as nothing.
pub fn data_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => data_bytes(&e.path()),
            Ok(t) if t.is_file() && !not_data(&e.file_name().to_string_lossy()) => {
                e.metadata().map_or(0, |m| m.len())
            }
            _ => 0,
        })
        .sum()
}

/// The account mariadbd runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: Uid,
    /// Group id.
    pub gid: Gid,
}

/// Creates the runtime folder and hands the datadir to the mysql user, as the official
/// image does: only entries not owned by it are changed.
pub fn prepare(paths: &Paths, run_as: RunAs) -> Result<(), DatadirError> {
    for dir in [&paths.datadir, &paths.run_dir] {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    fs::set_permissions(&paths.run_dir, fs::Permissions::from_mode(0o755))
        .map_err(io_err(&paths.run_dir))?;
    chown_tree(&paths.run_dir, run_as)?;
    chown_tree(&paths.datadir, run_as)
}

fn chown_tree(path: &Path, run_as: RunAs) -> Result<(), DatadirError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    if meta.uid() != run_as.uid.as_raw() || meta.gid() != run_as.gid.as_raw() {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path,
            Some(run_as.uid),
            Some(run_as.gid),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_err(path)(io::Error::from(e)))?;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(io_err(path))? {
            let entry = entry.map_err(io_err(path))?;
            chown_tree(&entry.path(), run_as)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("gi-datadir-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn states() {
        let d = TempDir::new("states");
        assert_eq!(inspect(&d.0.join("missing")).unwrap(), DataState::Fresh);
        assert_eq!(inspect(&d.0).unwrap(), DataState::Fresh);
        fs::create_dir(d.0.join("lost+found")).unwrap();
        assert_eq!(inspect(&d.0).unwrap(), DataState::Fresh);

        fs::write(d.0.join(INIT_STARTED), "").unwrap();
        fs::create_dir(d.0.join("mysql")).unwrap();
        assert_eq!(
            inspect(&d.0).unwrap(),
            DataState::Interrupted(Unfinished::Init)
        );

        fs::write(d.0.join(INIT_DONE), "").unwrap();
        assert_eq!(
            inspect(&d.0).unwrap(),
            DataState::Existing { grastate: None }
        );

        fs::write(
            d.0.join("grastate.dat"),
            "uuid: 9acf4d34-acdb-11e6-bcc3-d3e36276629f\nseqno: 5\nsafe_to_bootstrap: 1\n",
        )
        .unwrap();
        match inspect(&d.0).unwrap() {
            DataState::Existing { grastate: Some(g) } => assert_eq!(g.seqno, 5),
            other => panic!("{other:?}"),
        }
        fs::write(d.0.join("grastate.dat"), "garbage").unwrap();
        assert!(matches!(inspect(&d.0), Ok(DataState::Damaged { .. })));
    }

    #[test]
    fn an_sst_marker_beside_the_join_mark_is_an_ist_handshake() {
        let listing = |names: &[&str]| Listing {
            names: names.iter().map(|n| n.to_string()).collect(),
            grastate: Some(format!("uuid: {}\nseqno: -1\n", grastate::NIL_UUID)),
            innodb: true,
        };
        let dir = Path::new("/var/lib/mysql");
        let data = ["grastate.dat", "ibdata1", "mysql"];
        let cases: Vec<(Vec<&str>, bool)> = vec![
            // The script's marker alone: a full transfer had begun to replace the data.
            (vec![SST_IN_PROGRESS], false),
            // The marker beside galera-init's join mark: still the handshake, data intact.
            (vec![SST_IN_PROGRESS, JOIN_MARK], true),
            // mariabackup's stream folder beside the mark: the old data is not touched yet.
            (vec![SST_IN_PROGRESS, JOIN_MARK, ".sst"], true),
            // The mark alone: a join that was never a transfer.
            (vec![JOIN_MARK], true),
            (vec![], true),
        ];
        for (extra, intact) in cases {
            let mut names: Vec<&str> = data.to_vec();
            names.extend(&extra);
            let got = classify(dir, &listing(&names)).unwrap();
            assert_eq!(!got.is_fresh(), intact, "{extra:?} beside data: {got:?}");
            if !intact {
                assert_eq!(got, DataState::Interrupted(Unfinished::Transfer));
            }
        }
    }

    #[test]
    fn an_unfinished_state_transfer_is_not_data() {
        let d = TempDir::new("sst-killed");
        // What a joiner killed during its SST left: Galera's empty grastate.dat and cache,
        // the script's marker, part of the data.
        fs::write(d.0.join("grastate.dat"), "").unwrap();
        fs::write(d.0.join("galera.cache"), "x").unwrap();
        fs::write(d.0.join(SST_IN_PROGRESS), "").unwrap();
        fs::create_dir(d.0.join("mysql")).unwrap();
        assert_eq!(
            inspect(&d.0).unwrap(),
            DataState::Interrupted(Unfinished::Transfer)
        );
        clear_interrupted(&d.0).unwrap();
        assert_eq!(inspect(&d.0).unwrap(), DataState::Fresh);
    }

    #[test]
    fn data_from_another_image_counts_as_existing() {
        let d = TempDir::new("foreign-image");
        fs::create_dir(d.0.join("mysql")).unwrap();
        fs::write(d.0.join("ibdata1"), "").unwrap();
        assert_eq!(
            inspect(&d.0).unwrap(),
            DataState::Existing { grastate: None }
        );
    }

    #[test]
    fn unknown_files_are_refused_and_kept() {
        let d = TempDir::new("foreign");
        fs::write(d.0.join("notes.txt"), "mine").unwrap();
        let err = inspect(&d.0).unwrap_err().to_string();
        assert!(
            err.contains("notes.txt") && err.contains("empty volume"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(d.0.join("notes.txt")).unwrap(), "mine");
    }

    #[test]
    fn data_bytes_leave_the_cache_and_the_redo_log_out() {
        let d = TempDir::new("bytes");
        fs::create_dir_all(d.0.join("mytestdb")).unwrap();
        fs::write(d.0.join("ibdata1"), vec![0u8; 1000]).unwrap();
        fs::write(d.0.join("mytestdb/t.ibd"), vec![0u8; 234]).unwrap();
        fs::write(d.0.join("galera.cache"), vec![0u8; 5000]).unwrap();
        fs::write(d.0.join("ib_logfile0"), vec![0u8; 7000]).unwrap();
        std::os::unix::fs::symlink("/usr", d.0.join("link")).unwrap();
        assert_eq!(data_bytes(&d.0), 1234);
        assert_eq!(data_bytes(&d.0.join("missing")), 0);
    }

    #[test]
    fn clearing_an_interrupted_init_keeps_lost_and_found() {
        let d = TempDir::new("clear");
        fs::create_dir(d.0.join("lost+found")).unwrap();
        fs::write(d.0.join(INIT_STARTED), "").unwrap();
        fs::create_dir_all(d.0.join("mysql/sub")).unwrap();
        fs::write(d.0.join("ibdata1"), "x").unwrap();
        clear_interrupted(&d.0).unwrap();
        let left: Vec<_> = fs::read_dir(&d.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["lost+found"]);
        assert_eq!(inspect(&d.0).unwrap(), DataState::Fresh);
    }
}
