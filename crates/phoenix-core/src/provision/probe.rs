//! Observing a guest's resources in one round trip: [`script`] is a `sh` script (its values
//! passed as arguments, never spliced into it) that prints one tab-separated line per fact;
//! [`parse`] reads those lines back into a [`GuestState`]. Pure: the driver runs the script
//! in the guest (`pct exec`, `qm guest exec`, `lxc-attach`).

use super::resource::{FileState, GuestState, Resource, ServiceState};
use crate::deploy::FileMeta;

/// The probe for `resources`: the script, and its arguments (`$1`...).
pub fn script(resources: &[&Resource]) -> (String, Vec<String>) {
    let mut script = String::from("export LC_ALL=C\n");
    let mut args: Vec<String> = Vec::new();
    let mut arg = |value: &str| {
        args.push(value.to_string());
        format!("\"${{{}}}\"", args.len())
    };
    for resource in resources {
        let line = match resource {
            Resource::Packages { names } => {
                let names: Vec<String> = names.iter().map(|n| arg(n)).collect();
                format!("dpkg-query -W -f='package\\t${{Package}}\\t${{db:Status-Status}}\\n' -- {} 2>/dev/null", names.join(" "))
            }
            Resource::Group { name } => {
                let name = arg(name);
                format!("getent group {name} >/dev/null && printf 'group\\t%s\\n' {name}")
            }
            Resource::User { name, .. } => {
                let name = arg(name);
                format!("getent passwd {name} >/dev/null && printf 'user\\t%s\\n' {name}")
            }
            Resource::File(file) => file_line(arg(&file.path)),
            Resource::Download(download) => file_line(arg(&download.path)),
            Resource::Command(command) => match &command.done_when {
                Some(condition) => {
                    let (name, condition) = (arg(&command.name), arg(condition));
                    format!("( sh -c {condition} ) </dev/null >/dev/null 2>&1 && printf 'done\\t%s\\n' {name}")
                }
                None => continue,
            },
            Resource::Service { unit, needs, .. } => {
                let unit = arg(unit);
                let service = format!(
                    "printf 'service\\t%s\\t%s\\t%s\\n' {unit} \"$(systemctl is-enabled -- {unit} 2>/dev/null)\" \"$(systemctl is-active -- {unit} 2>/dev/null)\""
                );
                match needs {
                    Some(path) => format!("{service}\n{}", file_line(arg(path))),
                    None => service,
                }
            }
        };
        script.push_str(&line);
        script.push('\n');
    }
    // The last line's status would otherwise be the script's.
    script.push_str("exit 0\n");
    (script, args)
}

/// A file's line: its path, digest and metadata, when it is a regular file.
fn file_line(path: String) -> String {
    format!("[ -f {path} ] && printf 'file\\t%s\\t%s\\t%s\\n' {path} \"$(sha256sum < {path} | cut -d' ' -f1)\" \"$(stat -c '%a %U:%G' -- {path})\"")
}

/// The facts the probe printed. A line that is not one of them is refused, so a guest
/// that prints something else (a login banner, a broken coreutils) is not taken for empty.
pub fn parse(output: &str) -> Result<GuestState, String> {
    let mut state = GuestState::default();
    for line in output.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["package", name, status] => {
                if *status == "installed" {
                    state.packages.insert(name.to_string());
                }
            }
            ["group", name] => drop(state.groups.insert(name.to_string())),
            ["user", name] => drop(state.users.insert(name.to_string())),
            ["done", name] => drop(state.done.insert(name.to_string())),
            ["file", path, sha256, meta] => {
                if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("unexpected digest `{}` for {path}", sha256.chars().take(70).collect::<String>()));
                }
                let (mode, owner) = meta.split_once(' ').ok_or_else(|| format!("unexpected stat output `{meta}`"))?;
                let mode = u32::from_str_radix(mode, 8).map_err(|_| format!("unexpected mode `{mode}`"))?;
                let meta = FileMeta { mode, owner: owner.to_string() };
                state.files.insert(path.to_string(), FileState { sha256: sha256.to_string(), meta });
            }
            ["service", unit, enabled, active] => {
                state.services.insert(unit.to_string(), ServiceState { enabled: enabled.to_string(), active: active.to_string() });
            }
            _ => return Err(format!("unexpected line from the guest probe: `{}`", line.chars().take(120).collect::<String>())),
        }
    }
    Ok(state)
}
