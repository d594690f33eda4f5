//! `gvwstate.dat`: the last Primary view this node was part of, saved for `pc.recovery`.
//!
//! After a crash of every node, Galera restores the Primary component by itself once every
//! member of the saved view is back (even with new addresses: members are node UUIDs). The
//! election uses the view to know how many nodes to expect and to leave that case to Galera.

use serde::{Deserialize, Serialize};

/// The file's name in the datadir.
pub const GVWSTATE_FILE: &str = "gvwstate.dat";

/// The saved Primary view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedView {
    /// This node's UUID in that view.
    pub my_uuid: String,
    /// The view's id (`<seq> <uuid> <n>` in the file, kept as written).
    pub view_id: String,
    /// The UUIDs of every member of the view.
    pub members: Vec<String>,
}

/// Parses `gvwstate.dat`; `None` when it has no complete view.
pub fn parse(text: &str) -> Option<SavedView> {
    let mut my_uuid = None;
    let mut view_id = None;
    let mut members = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "my_uuid" => my_uuid = Some(value.to_string()),
            "view_id" => view_id = Some(value.to_string()),
            "member" => {
                if let Some(uuid) = value.split_whitespace().next() {
                    members.push(uuid.to_string());
                }
            }
            _ => {}
        }
    }
    if members.is_empty() {
        return None;
    }
    Some(SavedView {
        my_uuid: my_uuid?,
        view_id: view_id?,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_saved_view() {
        let text = "my_uuid: d3124bc8-1605-11e4-aa3d-ab44303c044a\n#vwbeg\n\
            view_id: 3 0dae1307-1606-11e4-aa94-5255b1455aa0 12\nbootstrap: 0\n\
            member: 0dae1307-1606-11e4-aa94-5255b1455aa0 1\n\
            member: 47bbe2e2-1606-11e4-8593-2a6d8335bc79 1\n\
            member: d3124bc8-1605-11e4-aa3d-ab44303c044a 1\n#vwend\n";
        let v = parse(text).unwrap();
        assert_eq!(v.my_uuid, "d3124bc8-1605-11e4-aa3d-ab44303c044a");
        assert_eq!(v.view_id, "3 0dae1307-1606-11e4-aa94-5255b1455aa0 12");
        assert_eq!(v.members.len(), 3);
        assert_eq!(v.members[1], "47bbe2e2-1606-11e4-8593-2a6d8335bc79");
    }

    #[test]
    fn incomplete_files_give_none() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("my_uuid: x\nview_id: 1 x 1\n"), None);
        assert_eq!(parse("view_id: 1 x 1\nmember: a 1\n"), None);
    }

    proptest::proptest! {
        /// Whatever gvwstate.dat holds, parsing returns; a saved view has members.
        #[test]
        fn any_gvwstate_parses_or_gives_none(text in r"(my_uuid: [0-9a-f-]{0,40}\n)?(#vwbeg\n)?(view_id: [0-9]{0,3} [0-9a-f-]{0,40} [0-9]{0,3}\n)?(bootstrap: [01]\n)?(member: [0-9a-f-]{0,40} [0-9]\n){0,4}(#vwend\n)?") {
            if let Some(v) = parse(&text) {
                proptest::prop_assert!(!v.members.is_empty());
            }
        }
    }
}
