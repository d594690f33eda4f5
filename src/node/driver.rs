//! A node's whole life as one pure state machine: the [`Driver`].
//!
//! A node inspects its datadir, elects, prepares, starts mariadbd, watches it and sees it
//! stop. Around the pure decision ([`crate::decision`]) and the election rounds
//! ([`crate::election`]) there is glue: what an override file means, what is recorded in
//! `galera-init.json` and when, which file changes a plan makes before the server starts,
//! what a stop means for the next election. All of it is here, once: the driver takes what
//! happened (the datadir as read, a recovered position, a round's world, a monitor reading,
//! a stop signal, an exit) and returns [`Effect`]s, in the order they must be carried out.
//!
//! Two hosts carry the effects out: the real node (`node::host`: files, processes, the
//! local server) and the simulation (`tests/sim`: a model of the same). So every fault
//! schedule the simulation runs checks the code a node runs.
//!
//! The order of a start, and the calls that drive it:
//!
//! 1. [`Driver::inspected`]: what the datadir holds. It may ask for
//!    [`Effect::RecoverPosition`]; the answer comes back through [`Driver::recovered`].
//! 2. [`Driver::round`], twice a second, until the plan is final: the effects of a final
//!    plan end with [`Effect::StartServer`] (or [`Effect::Refuse`]).
//! 3. [`Driver::server_started`] once mariadbd runs, then [`Driver::tick`] with every
//!    reading of its status, and [`Driver::stop_signal`] when the orchestrator stops it.
//! 4. [`Driver::exited`] when mariadbd is gone (or never started): the [`Outcome`] says
//!    whether the container exits or elects again.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::datadir::{self, DataState, Listing, Unfinished};
use crate::decision::{BootstrapKind, ExpectedDonor, Override, Params, Plan};
use crate::election::{Election, World};
use crate::galera::SstMethod;
use crate::galera::grastate::{GRASTATE_FILE, GraState, NIL_UUID};
use crate::galera::gvwstate::SavedView;
use crate::record::{self, Record};
use crate::state::{NodeState, Phase};

use super::monitor::{Monitor, Started, Stop};
use super::startup::{self, Disk};

/// What the driver needs to know of the settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The election's settings.
    pub params: Params,
    /// `PC_RECOVERY_TIMEOUT`.
    pub pc_recovery_timeout: Duration,
    /// `FORCE_BOOTSTRAP=yes` is set on the service.
    pub force_env: bool,
    /// The datadir, as named in messages.
    pub datadir: PathBuf,
    /// `CLUSTER_NAME`, told to the peers: a node of another cluster is never a peer.
    pub cluster_name: String,
}

/// Something the host must do, in order. Each is small and has one meaning; the host
/// reports back only where the driver needs an answer ([`Driver::recovered`],
/// [`Driver::server_started`], [`Driver::exited`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Write the record (`galera-init.json`) into the datadir.
    SaveRecord(Record),
    /// Set (`true`) or clear (`false`) `safe_to_bootstrap` in `grastate.dat`.
    SafeToBootstrap(bool),
    /// Replace a `grastate.dat` that cannot be parsed with Galera's running form at this
    /// cluster UUID (seqno -1), keeping the damaged file beside it.
    RepairGrastate {
        /// The cluster UUID InnoDB holds.
        uuid: String,
    },
    /// Run `mariadbd --wsrep-recover` and report the position to [`Driver::recovered`].
    RecoverPosition,
    /// Remove an SST script's marker left beside intact data (an IST handshake was cut).
    RemoveStaleMarker,
    /// Remove the force-bootstrap file (`galera-init bootstrap`).
    RemoveForceFile,
    /// Remove `gvwstate.dat`: the saved view is over.
    ForgetSavedView,
    /// Build a fresh datadir but leave it marked unfinished (the node expected to bootstrap
    /// a fresh cluster does it while the election settles); `clear_first` when an
    /// unfinished one is there.
    BuildDatadir {
        /// Clear what an unfinished initialisation or transfer left first.
        clear_first: bool,
    },
    /// Make the datadir a database for a bootstrap: commit the one built while the election
    /// settled (`built`), or build and commit one now.
    InitDatadir {
        /// A datadir was built by [`Effect::BuildDatadir`] and only needs committing.
        built: bool,
        /// Clear what an unfinished initialisation or transfer left first.
        clear_first: bool,
    },
    /// Clear what an unfinished initialisation, transfer or preparation left: a joiner
    /// receives everything by SST.
    ClearDatadir,
    /// Leave [`datadir::JOIN_MARK`] in a datadir with data that is about to join.
    MarkJoin,
    /// Remove [`datadir::JOIN_MARK`]: the join is over.
    UnmarkJoin,
    /// Write the Galera config file.
    WriteConfig {
        /// The `gcomm://` list.
        members: Vec<IpAddr>,
        /// `wsrep_sst_donor`.
        donors: Vec<String>,
        /// `wsrep_sst_method`.
        sst_method: SstMethod,
    },
    /// Ask the donor Galera is expected to pick to leave the read pool.
    ReserveDonor(ExpectedDonor),
    /// Tell the reserved donor that this node is Synced.
    ReleaseDonor(ExpectedDonor),
    /// Start mariadbd; the host reports with [`Driver::server_started`].
    StartServer {
        /// How: a bootstrap (`--wsrep-new-cluster`), a join, or a restore left to
        /// pc.recovery.
        launch: Launch,
        /// `--wsrep-start-position`, when grastate.dat says -1 and InnoDB knew better.
        start_position: Option<(String, i64)>,
    },
    /// `SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'`, and why.
    PcBootstrap(BootstrapKind),
    /// Stop or kill mariadbd, as this node's own decision.
    StopServer(Stop),
    /// Put the driver's view of this node into the state it serves on `/state`.
    Publish(Box<Published>),
    /// Stop the node: exit 1 with this line.
    Refuse(String),
}

/// How mariadbd is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// `--wsrep-new-cluster`, by this rule.
    Bootstrap(BootstrapKind),
    /// To join a running Primary component.
    Join,
    /// To let Galera's pc.recovery restore the saved Primary view.
    PcRecovery,
}

/// The part of a node's served state ([`NodeState`]) the driver owns. The rest (address,
/// name, the `wsrep_%` status, the health flags) belongs to other parts of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The phase, when the driver sets it (while mariadbd runs, its status does).
    pub phase: Option<Phase>,
    /// The fields from the datadir, the record and the election.
    pub state: NodeState,
}

impl Published {
    /// Copies the driver's fields into the served state.
    pub fn apply(&self, s: &mut NodeState) {
        let p = &self.state;
        if let Some(phase) = self.phase {
            s.phase = phase;
        }
        s.fresh = p.fresh;
        s.has_galera_state = p.has_galera_state;
        s.uuid.clone_from(&p.uuid);
        s.seqno = p.seqno;
        s.safe_to_bootstrap = p.safe_to_bootstrap;
        s.view.clone_from(&p.view);
        s.volume_id.clone_from(&p.volume_id);
        s.lineage.clone_from(&p.lineage);
        s.last_view.clone_from(&p.last_view);
        s.superseded = p.superseded;
        s.left_while_others = p.left_while_others;
        s.accepted.clone_from(&p.accepted);
        s.override_requested = p.override_requested;
        s.known.clone_from(&p.known);
        s.cluster_name.clone_from(&p.cluster_name);
        s.decision.clone_from(&p.decision);
        s.waiting_for.clone_from(&p.waiting_for);
    }
}

/// What the host read from the datadir at start.
#[derive(Debug, Clone)]
pub struct Found {
    /// The datadir's entries and `grastate.dat`.
    pub listing: Listing,
    /// `galera-init.json`: `Ok(None)` when there is none, `Err` when it cannot be read.
    pub record: Result<Option<Record>, String>,
    /// `gvwstate.dat`, when it can be parsed.
    pub view: Option<SavedView>,
}

/// One reading of the running server, for [`Driver::tick`].
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// The node's served state with this reading of the `wsrep_%` status applied (phase
    /// `Running` once the server answers).
    pub status: NodeState,
    /// The server answered this reading.
    pub answered: bool,
    /// The force-bootstrap file is in the datadir.
    pub force_file: bool,
    /// An SST script's marker (`sst_in_progress`) is in the datadir.
    pub sst_marker: bool,
    /// `galera-init.json` is in the datadir (a full state transfer clears it).
    pub record_file: bool,
}

/// How mariadbd ended, for [`Driver::exited`].
#[derive(Debug, Clone, Default)]
pub struct Exit {
    /// Its exit code (`None`: it never ran, or start-up was stopped before it did).
    pub code: Option<u8>,
    /// `grastate.dat` as it left it.
    pub grastate: Option<GraState>,
    /// A stop signal came from outside (the orchestrator).
    pub stop_received: bool,
}

/// What the node does once mariadbd is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The container exits with this code (mariadbd's own, or 1).
    Exit(u8),
    /// The driver stopped mariadbd to elect again: the host starts over with discovery.
    Elect,
}

/// Where the driver is.
#[derive(Debug, Clone)]
enum Stage {
    /// Waiting for the datadir to be inspected.
    Idle,
    /// Waiting for `--wsrep-recover`'s answer.
    Recovering(Box<Inspected>),
    /// Election rounds; the election starts with the first round.
    Electing(Option<Box<Election>>),
    /// A final plan's effects are being carried out; mariadbd is about to start.
    Launching(Started),
    /// mariadbd runs.
    Running(Box<Monitor>),
}

/// What an inspection found, while the position is recovered.
#[derive(Debug, Clone)]
struct Inspected {
    state: DataState,
    record: Result<Option<Record>, String>,
    view: Option<SavedView>,
    listing: Listing,
}

/// The node's driver. One per container: it outlives the restarts of mariadbd it decides.
#[derive(Debug, Clone)]
pub struct Driver {
    cfg: Config,
    stage: Stage,
    /// The datadir as the last inspection left it.
    data: DataState,
    disk: Disk,
    record: Record,
    own: NodeState,
    /// FORCE_BOOTSTRAP acts on this volume at this start.
    env_override: bool,
    /// A datadir was built for a bootstrap that is not decided yet.
    built: bool,
    /// pc.recovery may be tried (not after it failed once in this container).
    allow_pc_recovery: bool,
    /// The donor reserved for this node's join, released once it is Synced.
    reserved: Option<ExpectedDonor>,
    /// The join mark is in the datadir.
    marked: bool,
    /// A stop signal came while mariadbd runs.
    stopping: bool,
}

impl Driver {
    /// A driver for a container that starts now.
    pub fn new(cfg: Config) -> Driver {
        Driver {
            cfg,
            stage: Stage::Idle,
            data: DataState::Fresh,
            disk: Disk::default(),
            record: Record::default(),
            own: NodeState::default(),
            env_override: false,
            built: false,
            allow_pc_recovery: true,
            reserved: None,
            marked: false,
            stopping: false,
        }
    }

    /// The record as the driver keeps it.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The datadir as the last inspection classified it.
    pub fn data(&self) -> &DataState {
        &self.data
    }

    /// Whether the driver runs election rounds now.
    pub fn electing(&self) -> bool {
        matches!(self.stage, Stage::Electing(_))
    }

    /// Whether mariadbd runs (between [`Driver::server_started`] and [`Driver::exited`]).
    pub fn running(&self) -> bool {
        matches!(self.stage, Stage::Running(_))
    }

    /// The nodes the election knew of in its last round.
    pub fn known(&self) -> &[IpAddr] {
        match &self.stage {
            Stage::Electing(Some(e)) => e.listed(),
            _ => &[],
        }
    }

    /// The datadir as read: decide what it is, and ask for the position when grastate.dat
    /// does not hold it.
    pub fn inspected(&mut self, found: Found) -> Vec<Effect> {
        let state = match datadir::classify(&self.cfg.datadir, &found.listing) {
            Ok(s) => s,
            Err(e) => return vec![Effect::Refuse(e.to_string())],
        };
        match &state {
            DataState::Interrupted(Unfinished::Transfer) => log::warn!(
                "a full state transfer into this node never finished ({} is still there, \
                 without {}): what it left is not data; it is cleared and the node receives \
                 a full transfer again",
                datadir::SST_IN_PROGRESS,
                datadir::JOIN_MARK
            ),
            DataState::Existing { .. } if found.listing.has(datadir::SST_IN_PROGRESS) => {
                log::warn!(
                    "{} beside intact data: this node was cut down during an IST handshake, \
                     before any full transfer began ({} is still there); the data is kept",
                    datadir::SST_IN_PROGRESS,
                    datadir::JOIN_MARK
                )
            }
            _ => {}
        }
        let damaged = matches!(state, DataState::Damaged { .. });
        let recover = match &state {
            DataState::Existing { grastate: Some(g) } => g.seqno == -1,
            // Galera's file cannot tell the position: InnoDB may.
            DataState::Damaged { .. } => found.listing.innodb,
            _ => false,
        };
        if damaged && let DataState::Damaged { problem } = &state {
            if found.listing.innodb {
                log::warn!(
                    "{} cannot be parsed ({problem}): recovering the position from InnoDB \
                     instead",
                    self.grastate_path()
                );
            } else if !never_primary(&found.record) {
                return vec![Effect::Refuse(format!(
                    "{} cannot be parsed ({problem}): fix or remove the file (Galera then \
                     recovers the position)",
                    self.grastate_path()
                ))];
            }
        }
        let inspected = Inspected {
            state,
            record: found.record,
            view: found.view,
            listing: found.listing,
        };
        if recover {
            log::info!(
                "grastate.dat has no position (seqno -1): recovering it with mariadbd \
                 --wsrep-recover"
            );
            self.stage = Stage::Recovering(Box::new(inspected));
            let mut fx = vec![self.publish(Some(Phase::Recovering))];
            fx.push(Effect::RecoverPosition);
            return fx;
        }
        self.settle(inspected, None)
    }

    /// `mariadbd --wsrep-recover`'s answer to [`Effect::RecoverPosition`].
    pub fn recovered(&mut self, position: Option<(String, i64)>) -> Vec<Effect> {
        let Stage::Recovering(inspected) = std::mem::replace(&mut self.stage, Stage::Idle) else {
            return Vec::new();
        };
        match &position {
            Some((u, s)) => log::info!("recovered position {u}:{s}"),
            None => log::warn!("no position recovered: this node counts as seqno -1"),
        }
        self.settle(*inspected, position)
    }

    fn grastate_path(&self) -> String {
        self.cfg.datadir.join(GRASTATE_FILE).display().to_string()
    }

    /// The last steps of an inspection: what the datadir is for the election, what the
    /// record says, and what must change on disk before anything else runs.
    fn settle(&mut self, found: Inspected, recovered: Option<(String, i64)>) -> Vec<Effect> {
        let mut fx = Vec::new();
        let Inspected {
            mut state,
            record,
            view,
            listing,
        } = found;
        let position = recovered.as_ref().filter(|(u, _)| u != NIL_UUID);
        // A datadir galera-init initialised for a bootstrap that never reached a Primary
        // component (mariadbd stopped before its first view: a bad option, an OOM kill):
        // no transaction of any cluster is in it. It is an unfinished initialisation.
        if !state.is_fresh()
            && never_primary(&record)
            && position.is_none()
            && !grastate_holds_position(&state)
        {
            log::warn!(
                "this datadir was initialised for a bootstrap that never reached a Primary \
                 component (mariadbd stopped before it did): it holds no transaction of any \
                 cluster, so it counts as an unfinished initialisation"
            );
            state = DataState::Interrupted(Unfinished::Init);
        }
        let mut grastate = match &state {
            DataState::Existing { grastate } => grastate.clone(),
            _ => None,
        };
        if let DataState::Damaged { problem } = &state {
            let Some((uuid, _)) = position else {
                return vec![Effect::Refuse(format!(
                    "{} cannot be parsed ({problem}) and InnoDB holds no position either \
                     (mariadbd --wsrep-recover found none): restore the file from a backup, \
                     or empty the volume to rejoin by SST",
                    self.grastate_path()
                ))];
            };
            fx.push(Effect::RepairGrastate { uuid: uuid.clone() });
            grastate = Some(GraState {
                uuid: uuid.clone(),
                seqno: -1,
                safe_to_bootstrap: false,
            });
            state = DataState::Existing {
                grastate: grastate.clone(),
            };
        }
        if matches!(state, DataState::Existing { .. }) && listing.has(datadir::SST_IN_PROGRESS) {
            fx.push(Effect::RemoveStaleMarker);
        }
        self.marked = listing.has(datadir::JOIN_MARK);
        let has_data = !state.is_fresh();
        log::info!(
            "datadir {}: {}",
            self.cfg.datadir.display(),
            describe(&state)
        );
        // A record without data belongs to data that is gone (an SST that never finished,
        // an initialisation that never reached a Primary component).
        let kept = matches!(record, Ok(Some(_))) && has_data;
        self.record = match record {
            Ok(Some(r)) if has_data => r,
            Err(e) if has_data => {
                log::warn!(
                    "{e}: starting a new record (this node's last Primary view and lineage \
                     are unknown, so the election counts nodes with data instead)"
                );
                Record::new(record::random_id())
            }
            _ => Record::new(record::random_id()),
        };
        self.disk = Disk {
            fresh: !has_data,
            grastate,
            recovered,
            view,
        };
        // Without a record, Galera's own evidence says whether the node left while others
        // stayed: a clean stop that was not the last of its Primary component.
        if has_data && !kept && self.disk.left_per_galera() {
            log::info!(
                "{}: a clean stop with safe_to_bootstrap: 0: this node left its component \
                 while others stayed",
                self.grastate_path()
            );
            self.record.left_while_others = true;
        }
        if has_data && self.record.settle_at_start(self.disk.position()) {
            log::warn!(
                "cleared safe_to_bootstrap in {}: galera-init set it for a bootstrap that never \
                 reached a Primary component",
                self.grastate_path()
            );
            fx.push(Effect::SafeToBootstrap(false));
            if let Some(g) = &mut self.disk.grastate {
                g.safe_to_bootstrap = false;
            }
        }
        self.env_override = self.record.arm_env_override(self.cfg.force_env);
        if self.cfg.force_env && !self.env_override {
            log::warn!(
                "FORCE_BOOTSTRAP=yes was used once already on this volume and is ignored: \
                 remove it from the service (docker service update --env-rm FORCE_BOOTSTRAP)"
            );
        }
        if has_data {
            fx.push(Effect::SaveRecord(self.record.clone()));
        }
        self.data = state;
        self.built = false;
        self.own = startup::own_state(&self.disk, &self.record);
        self.own.cluster_name.clone_from(&self.cfg.cluster_name);
        self.stage = Stage::Electing(None);
        fx.push(self.publish(Some(Phase::Waiting)));
        fx
    }

    /// One election round. `force_file` says the force-bootstrap file is there. The
    /// effects of a final plan end with [`Effect::StartServer`] or [`Effect::Refuse`];
    /// otherwise the host calls again after a pause, or at once after
    /// [`Effect::BuildDatadir`].
    pub fn round(&mut self, world: &mut dyn World, force_file: bool) -> Vec<Effect> {
        let Stage::Electing(election) = &mut self.stage else {
            return Vec::new();
        };
        let params = self.cfg.params.clone();
        let election = election.get_or_insert_with(|| Box::new(Election::new(params, world.now())));
        let force = if force_file {
            Override::Command
        } else if self.env_override {
            Override::Service
        } else {
            Override::None
        };
        self.own.override_requested = force;
        let plan = election.round(world, &self.own, force, self.allow_pc_recovery);
        let primary_seen = election.primary_seen();
        let known = election.listed().to_vec();
        self.own.decision = Some(plan.describe());
        self.own.waiting_for = match &plan {
            Plan::Wait { waiting_for, .. } => waiting_for.clone(),
            _ => Vec::new(),
        };
        self.own.known = election.first_hand().to_vec();
        let has_data = !self.data.is_fresh();
        let mut fx = Vec::new();
        let mut save = false;
        // An override is one decision: once a Primary component is made (or being made),
        // by this node or another, it is used up here too.
        if force.is_on() && primary_seen && matches!(plan, Plan::Wait { .. }) {
            log::warn!("override used up: a Primary component runs (or is being bootstrapped)");
            if force_file {
                fx.push(Effect::RemoveForceFile);
            }
            if self.env_override {
                self.env_override = false;
                self.record.force_env_used = true;
                save = true;
            }
            self.own.override_requested = Override::None;
        }
        if let Plan::Wait {
            accept: Some(candidate),
            ..
        } = &plan
            && has_data
            && self.record.accepted.as_ref() != Some(candidate)
        {
            // Recorded before the other node may bootstrap: it waits for this.
            self.record.accepted = Some(candidate.clone());
            save = true;
        }
        if let Plan::Wait {
            superseded: true, ..
        } = &plan
            && has_data
            && !self.record.superseded
        {
            log::warn!(
                "this node's history was given up by an override: the cluster restarts from \
                 other data; it keeps this volume as it is and has no say until an operator \
                 decides"
            );
            self.record.superseded = true;
            save = true;
        }
        if save && has_data {
            fx.push(Effect::SaveRecord(self.record.clone()));
        }
        if has_data {
            self.sync_record();
        }
        match plan {
            Plan::Wait { prepare, .. } => {
                fx.push(self.publish(None));
                if prepare && !self.built && self.data.is_fresh() {
                    log::info!(
                        "this node has the lowest address of a fresh cluster: initialising its \
                         datadir while the election settles (it is committed only if this \
                         node bootstraps)"
                    );
                    self.built = true;
                    fx.push(Effect::BuildDatadir {
                        clear_first: matches!(self.data, DataState::Interrupted(_)),
                    });
                }
            }
            plan => self.launch(plan, known, force.is_on(), &mut fx),
        }
        fx
    }

    /// The effects of a final plan (bootstrap or join), in the order they must happen.
    fn launch(&mut self, plan: Plan, known: Vec<IpAddr>, overridden: bool, fx: &mut Vec<Effect>) {
        let prep = startup::prepare(
            &plan,
            &mut self.record,
            &self.own,
            overridden,
            self.env_override,
        );
        let (launch, members, donors, expected_donor, sst_method, started) = match plan {
            // Every node the election knew of goes into the gcomm:// list.
            Plan::Bootstrap { kind, .. } => (
                Launch::Bootstrap(kind),
                known,
                Vec::new(),
                None,
                self.cfg.params.sst.default_method(),
                Started::Bootstrap,
            ),
            Plan::Join {
                members,
                donors,
                expected_donor,
                sst_method,
                pc_recovery,
                lineage,
                ..
            } => (
                if pc_recovery {
                    Launch::PcRecovery
                } else {
                    Launch::Join
                },
                members,
                donors,
                expected_donor,
                sst_method,
                Started::Join {
                    pc_recovery,
                    lineage,
                },
            ),
            Plan::Wait { .. } => unreachable!("only final plans launch"),
        };
        self.own.override_requested = Override::None;
        // Only an electing node tells others whom it knows: a list that stops being
        // refreshed would keep gone addresses alive.
        self.own.known.clear();
        // A bootstrap's epoch is published from now on: a node that joins the new
        // component takes it.
        self.sync_record();
        let bootstrap = matches!(launch, Launch::Bootstrap(_));
        fx.push(self.publish(Some(if bootstrap {
            Phase::Bootstrapping
        } else {
            Phase::Joining
        })));
        if prep.consume_override {
            fx.push(Effect::RemoveForceFile);
        }
        if prep.forget_saved_view {
            fx.push(Effect::ForgetSavedView);
        }
        fx.push(Effect::WriteConfig {
            members,
            donors,
            sst_method,
        });
        if let Some(donor) = expected_donor {
            fx.push(Effect::ReserveDonor(donor.clone()));
            self.reserved = Some(donor);
        }
        // From here on this node's data changes: what it said about its last stop is old.
        self.record.left_while_others = false;
        self.datadir_effects(bootstrap, prep.write_flag, fx);
        self.built = false;
        // grastate.dat says -1: start from the recovered position, so that a bootstrap keeps
        // the cluster's history (same UUID) and a joiner can catch up by IST.
        let start_position = self
            .disk
            .recovered
            .clone()
            .filter(|(_, s)| *s >= 0 && !self.data.is_fresh());
        fx.push(Effect::StartServer {
            launch,
            start_position,
        });
        self.stage = Stage::Launching(started);
    }

    /// What a final plan does to the datadir before mariadbd starts, and the record with it.
    fn datadir_effects(&mut self, bootstrap: bool, write_flag: bool, fx: &mut Vec<Effect>) {
        let clear_first = matches!(self.data, DataState::Interrupted(_));
        match (self.data.is_fresh(), bootstrap) {
            (true, true) => {
                fx.push(Effect::InitDatadir {
                    built: self.built,
                    clear_first: clear_first && !self.built,
                });
                fx.push(Effect::SaveRecord(self.record.clone()));
            }
            // A joiner receives everything by SST; what an unfinished (or a prepared) init
            // left is not data. Its record goes first: the SST keeps it, so that a crash
            // right after the transfer does not cost the volume id the other nodes know it
            // by.
            (true, false) => {
                if self.built || clear_first {
                    fx.push(Effect::ClearDatadir);
                }
                fx.push(Effect::SaveRecord(self.record.clone()));
            }
            (false, _) => {
                // The record says the bootstrap is pending before the flag is written: a
                // crash from here on leaves a flag the next start knows it must clear.
                fx.push(Effect::SaveRecord(self.record.clone()));
                if write_flag {
                    fx.push(Effect::SafeToBootstrap(true));
                }
                if !bootstrap && !self.marked {
                    fx.push(Effect::MarkJoin);
                    self.marked = true;
                }
            }
        }
    }

    /// mariadbd started at `now`: its monitor takes over.
    pub fn server_started(&mut self, now: Duration) {
        let Stage::Launching(started) = std::mem::replace(&mut self.stage, Stage::Idle) else {
            return;
        };
        let has_data = !self.data.is_fresh() || matches!(started, Started::Bootstrap);
        self.stopping = false;
        self.stage = Stage::Running(Box::new(Monitor::new(
            self.cfg.params.clone(),
            started,
            now,
            self.cfg.pc_recovery_timeout,
            has_data,
        )));
    }

    /// One reading of the running server.
    pub fn tick(&mut self, world: &mut dyn World, reading: &Reading) -> Vec<Effect> {
        let Stage::Running(monitor) = &mut self.stage else {
            return Vec::new();
        };
        let mut own = reading.status.clone();
        // FORCE_BOOTSTRAP was used up by the plan that started mariadbd: from here on only
        // the force-bootstrap file (`galera-init bootstrap`) is an override.
        own.override_requested = if reading.force_file {
            Override::Command
        } else {
            Override::None
        };
        own.sst_in_progress = reading.sst_marker;
        let act = monitor.tick(&mut self.record, world, &own);
        let mut fx = Vec::new();
        // The record first: a pc.bootstrap's epoch is pending on disk before it happens.
        // A full state transfer clears the datadir, the record with it: once the server
        // answers (it has its data), write it again, with the volume id peers know.
        // A node stopping from a component others joined during its drain leaves them too.
        let leaving = self.stopping && leaves_others(&own) && !self.record.left_while_others;
        if leaving {
            self.record.left_while_others = true;
        }
        if act.save || leaving || (reading.answered && !reading.record_file) {
            fx.push(Effect::SaveRecord(self.record.clone()));
        }
        if let Some(kind) = act.pc_bootstrap {
            fx.push(Effect::PcBootstrap(kind));
        }
        if act.consume_override && reading.force_file {
            fx.push(Effect::RemoveForceFile);
        }
        if let Some(stop) = act.stop {
            fx.push(Effect::StopServer(stop));
        }
        if own.is_synced() {
            if let Some(donor) = self.reserved.take() {
                fx.push(Effect::ReleaseDonor(donor));
            }
            if self.marked {
                self.marked = false;
                fx.push(Effect::UnmarkJoin);
            }
        }
        self.own.override_requested = own.override_requested;
        // What the datadir said at start is old once the server answers: it holds data,
        // Galera's state, and in a Primary component its cluster's history (an SST may
        // have replaced what was there).
        if reading.answered {
            self.own.fresh = Some(false);
            self.own.has_galera_state = true;
            if own.is_primary() {
                self.own.uuid.clone_from(&own.wsrep_cluster_state_uuid);
            }
        }
        if let Some(plan) = &act.plan {
            self.own.decision = Some(plan.describe());
            self.own.waiting_for = match plan {
                Plan::Wait { waiting_for, .. } => waiting_for.clone(),
                _ => Vec::new(),
            };
        } else if own.is_primary() {
            self.own.waiting_for.clear();
        }
        self.sync_record();
        fx.push(self.publish(None));
        fx
    }

    /// A stop signal came from outside while mariadbd runs, before it is passed on. `last`
    /// is the node's last reading. A node in a Primary component with other members is
    /// about to leave them: they may go on without it. That is recorded now, not inferred
    /// when mariadbd has exited: a shutdown that Docker's grace period cuts short never
    /// exits cleanly, though Galera has left the group already.
    pub fn stop_signal(&mut self, last: &NodeState) -> Vec<Effect> {
        let Stage::Running(monitor) = &mut self.stage else {
            return Vec::new();
        };
        monitor.stop_signal();
        self.stopping = true;
        if !leaves_others(last) {
            log::debug!(
                "stop signal: not in a Primary component with others ({:?}, {:?}, size {:?})",
                last.phase,
                last.wsrep_cluster_status,
                last.wsrep_cluster_size
            );
            return Vec::new();
        }
        if !self.record.left_while_others {
            log::info!(
                "leaving a Primary component of {} node(s): recorded, so that this node never \
                 restarts the cluster without the ones that stay",
                last.wsrep_cluster_size.unwrap_or(0)
            );
            self.record.left_while_others = true;
        }
        vec![Effect::SaveRecord(self.record.clone())]
    }

    /// mariadbd is gone (or never started: `exit.code` is `None`).
    pub fn exited(&mut self, exit: &Exit) -> (Vec<Effect>, Outcome) {
        let mut fx = Vec::new();
        let stage = std::mem::replace(&mut self.stage, Stage::Idle);
        let mut elect = false;
        if let Stage::Running(monitor) = &stage {
            elect = monitor.stop_requested() && !exit.stop_received;
            // A clean stop: Galera's own word on whether others stayed beats what was
            // recorded when the stop began. The last to leave its Primary component gets
            // safe_to_bootstrap: 1; a node that left one with others in it does not.
            // (A node that was not Primary when it stopped left no component behind.)
            if exit.code == Some(0)
                && let Some(g) = exit.grastate.as_ref().filter(|g| g.seqno >= 0)
            {
                if g.safe_to_bootstrap {
                    self.record.left_while_others = false;
                } else if monitor.last_primary() {
                    self.record.left_while_others = true;
                }
            }
        }
        // A bootstrap still pending never reached a Primary component, unless grastate.dat
        // shows it committed after its start position.
        if self.record.pending.is_some() {
            let position = exit.grastate.as_ref().map(|g| g.seqno).filter(|s| *s >= 0);
            if self.record.settle_at_start(position) {
                log::warn!(
                    "cleared safe_to_bootstrap in {}: galera-init set it for a bootstrap that \
                     never reached a Primary component",
                    self.grastate_path()
                );
                fx.push(Effect::SafeToBootstrap(false));
            }
        }
        let has_data = !self.data.is_fresh()
            || matches!(
                stage,
                Stage::Running(_) | Stage::Launching(Started::Bootstrap)
            );
        if has_data {
            fx.push(Effect::SaveRecord(self.record.clone()));
        }
        self.sync_record();
        fx.push(self.publish(Some(Phase::Stopping)));
        if elect {
            self.allow_pc_recovery = false;
            return (fx, Outcome::Elect);
        }
        (fx, Outcome::Exit(exit.code.unwrap_or(1)))
    }

    /// The record's fields in the published state.
    fn sync_record(&mut self) {
        self.own.volume_id = Some(self.record.volume_id.clone());
        self.own.lineage = self.record.published_lineage();
        self.own.last_view.clone_from(&self.record.last_view);
        self.own.superseded = self.record.superseded;
        self.own.accepted.clone_from(&self.record.accepted);
        self.own.left_while_others = self.record.left_while_others;
    }

    fn publish(&self, phase: Option<Phase>) -> Effect {
        Effect::Publish(Box::new(Published {
            phase,
            state: self.own.clone(),
        }))
    }
}

/// Whether a node in this state that stops now leaves other members of its Primary
/// component behind.
fn leaves_others(s: &NodeState) -> bool {
    s.is_primary() && s.wsrep_cluster_size.is_some_and(|n| n > 1)
}

/// Whether the record is of a datadir galera-init initialised for a bootstrap that has not
/// reached a Primary component, and that never took another history since.
fn never_primary(record: &Result<Option<Record>, String>) -> bool {
    matches!(record, Ok(Some(r)) if r.never_primary && r.lineage.is_empty() && r.last_view.is_none())
}

/// Whether grastate.dat names a cluster (a node that reached a Primary component writes
/// its UUID there).
fn grastate_holds_position(state: &DataState) -> bool {
    matches!(state, DataState::Existing { grastate: Some(g) } if g.uuid != NIL_UUID)
}

/// The datadir in a few words, for the log.
pub fn describe(data: &DataState) -> String {
    match data {
        DataState::Fresh => "empty".into(),
        DataState::Interrupted(Unfinished::Init) => "an unfinished initialisation".into(),
        DataState::Interrupted(Unfinished::Transfer) => "an unfinished state transfer".into(),
        DataState::Existing { grastate: None } => "existing data, no grastate.dat".into(),
        DataState::Existing { grastate: Some(g) } => format!(
            "existing data, cluster {} seqno {} safe_to_bootstrap {}",
            g.uuid, g.seqno, g.safe_to_bootstrap as u8
        ),
        DataState::Damaged { problem } => {
            format!("existing data, grastate.dat damaged ({problem})")
        }
    }
}
