//! `user:group` to numeric ids, from a system's passwd and group files (the guest's own when
//! the guest is a folder, since the same name can have other ids in each container).

/// Numeric owner of a file.
pub type Owner = (u32, u32);

fn lookup(database: &str, name: &str) -> Option<u32> {
    if let Ok(id) = name.parse::<u32>() {
        return Some(id);
    }
    database.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// Resolves `user:group` (or `user`, whose primary group is then used) against the texts of
/// /etc/passwd and /etc/group. Numeric ids are taken as they are.
pub fn resolve_owner(owner: &str, passwd: &str, group: &str) -> Result<Owner, String> {
    let (user, group_name) = owner.split_once(':').map_or((owner, None), |(u, g)| (u, Some(g)));
    let uid = lookup(passwd, user).ok_or_else(|| format!("user `{user}` does not exist"))?;
    let gid = match group_name {
        Some(name) => lookup(group, name).ok_or_else(|| format!("group `{name}` does not exist"))?,
        None => passwd
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.first() == Some(&user)).then(|| fields.get(3)?.parse().ok()).flatten()
            })
            .ok_or_else(|| format!("user `{user}` has no primary group"))?,
    };
    Ok((uid, gid))
}

/// The name of the user or group with `id` in a passwd or group file's text.
pub fn name_of(id: u32, file: &str) -> Option<String> {
    file.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2)?.parse::<u32>().ok()? == id).then(|| fields[0].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nwww-data:x:33:\ntraefik:x:990:\n";

    #[test]
    fn names_and_numbers_resolve() {
        assert_eq!(resolve_owner("root:www-data", PASSWD, GROUP), Ok((0, 33)));
        assert_eq!(resolve_owner("www-data", PASSWD, GROUP), Ok((33, 33)));
        assert_eq!(resolve_owner("1000:990", PASSWD, GROUP), Ok((1000, 990)));
        assert_eq!(resolve_owner("traefik:traefik", PASSWD, GROUP), Err("user `traefik` does not exist".into()));
        assert_eq!(resolve_owner("root:nogroup", PASSWD, GROUP), Err("group `nogroup` does not exist".into()));
    }
}
