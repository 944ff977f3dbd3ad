//! The accounts a guest has once its services are installed: the users and groups that own
//! the files phoenix writes into it (its rendered files and its installed certificates). A
//! rehearsal's guest folders and the bare lab are given them, so owners resolve as in the real
//! guest. Pure text.

use crate::render::Rendered;
use phoenix_model::model::{GuestId, Model};
use std::collections::{BTreeMap, BTreeSet};

/// Each guest's `/etc/passwd` and `/etc/group`.
pub fn guest_accounts(model: &Model, rendered: &Rendered) -> BTreeMap<GuestId, (String, String)> {
    owners(model, rendered).into_iter().map(|(id, owners)| (id, account_files(&owners))).collect()
}

/// The owners (`user:group`) of the files phoenix writes into each guest: the rendered files
/// and the installed certificates. A guest has these accounts once its services are installed.
fn owners(model: &Model, rendered: &Rendered) -> BTreeMap<GuestId, BTreeSet<String>> {
    let mut owners: BTreeMap<GuestId, BTreeSet<String>> = BTreeMap::new();
    for file in &rendered.files {
        if let crate::deploy::Machine::Guest(id) = file.target {
            owners.entry(id).or_default().insert(file.owner.clone());
        }
    }
    for cert in &model.certificates {
        for file in crate::certificates::renewal::installed_files(cert) {
            if let (Some((id, _)), Some(owner)) = (file.place.guest, file.owner) {
                owners.entry(id).or_default().insert(owner);
            }
        }
    }
    owners
}

/// `/etc/passwd` and `/etc/group` with root and these owners' users and groups, numbered from
/// 100 in name order.
fn account_files(owners: &BTreeSet<String>) -> (String, String) {
    let users: BTreeSet<&str> = owners.iter().map(|o| o.split(':').next().unwrap_or_default()).filter(|u| *u != "root").collect();
    let groups: BTreeSet<&str> = owners.iter().map(|o| o.split(':').nth(1).unwrap_or(o.as_str())).filter(|g| *g != "root").collect();
    let group_id = |g: &str| groups.iter().position(|x| *x == g).map_or(0, |i| 100 + i);
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/sh\n");
    for (index, user) in users.iter().enumerate() {
        let primary = owners.iter().find_map(|o| o.strip_prefix(&format!("{user}:"))).unwrap_or(user);
        passwd.push_str(&format!("{user}:x:{}:{}::/nonexistent:/usr/sbin/nologin\n", 100 + index, group_id(primary)));
    }
    let mut group = String::from("root:x:0:\n");
    for (index, name) in groups.iter().enumerate() {
        group.push_str(&format!("{name}:x:{}:\n", 100 + index));
    }
    (passwd, group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_owner_gets_an_account_and_its_group() {
        let owners: BTreeSet<String> = ["root:root", "traefik:traefik", "www-data:ssl-cert", "nginx"].map(String::from).into();
        let (passwd, group) = account_files(&owners);
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/sh\nnginx:x:100:100::/nonexistent:/usr/sbin/nologin\n\
             traefik:x:101:102::/nonexistent:/usr/sbin/nologin\nwww-data:x:102:101::/nonexistent:/usr/sbin/nologin\n"
        );
        assert_eq!(group, "root:x:0:\nnginx:x:100:\nssl-cert:x:101:\ntraefik:x:102:\n");
    }
}
