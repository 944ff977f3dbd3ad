//! One `<vmid>.fw` per guest (options and the guest's own rules), and each guest's NIC setting
//! with `firewall=1` wherever the guest's firewall is enabled: without the flag Proxmox filters
//! nothing for that NIC, whatever the rules say.

use super::{flag, rule_lines, VALIDATE};
use crate::deploy::Machine;
use crate::pve_fw::FwFile;
use crate::render::{GuestSetting, Rendered, RenderedFile};
use phoenix_model::model::{Guest, GuestKind, Model};

pub fn path(id: u32) -> String {
    phoenix_model::paths::guest_fw(id)
}

pub fn render(model: &Model, out: &mut Rendered) {
    for guest in model.guests.values() {
        let mut file = FwFile::default();
        file.options.insert("enable".into(), flag(guest.firewall.enabled));
        file.options.insert("policy_in".into(), guest.firewall.policy_in.as_pve().into());
        file.options.insert("policy_out".into(), guest.firewall.policy_out.as_pve().into());
        file.rules = rule_lines(&guest.firewall.rules);
        out.files.push(RenderedFile::new(Machine::Host, path(guest.id), file.to_text()).validated_by(VALIDATE));
        if let Some(setting) = nic_setting(guest, model) {
            out.settings.push(setting);
        }
    }
}

/// Each guest's `net0` as a node has it before phoenix deploys a firewall: the rendered value
/// without `firewall=1` (a bare lab, and the simulated nodes of tests, start so).
pub fn nics_before_firewall(rendered: &Rendered) -> std::collections::BTreeMap<u32, String> {
    rendered
        .settings
        .iter()
        .filter(|s| s.key == "net0")
        .map(|s| (s.guest, s.value.split(',').filter(|part| part.trim() != "firewall=1").collect::<Vec<_>>().join(",")))
        .collect()
}

/// Whether phoenix sets `firewall=1` on the guest's NIC: as stated, else when its firewall is on.
pub fn nic_firewall(guest: &Guest) -> bool {
    guest.nic.firewall.unwrap_or(guest.firewall.enabled)
}

/// The guest's `net0` in Proxmox's syntax (`pct set` / `qm set`).
fn nic_setting(guest: &Guest, model: &Model) -> Option<GuestSetting> {
    let nic = &guest.nic;
    nic.span?;
    let bridge = nic.bridge.clone().or_else(|| model.host.bridge.clone()).unwrap_or_else(|| "vmbr0".into());
    let mut parts = Vec::new();
    match guest.kind {
        GuestKind::Lxc => {
            parts.push("name=eth0".to_string());
            parts.push(format!("bridge={bridge}"));
            parts.push(format!("firewall={}", u8::from(nic_firewall(guest))));
            if let Some(gw) = &nic.gateway {
                parts.push(format!("gw={}", gw.value));
            }
            if let Some(mac) = &nic.mac {
                parts.push(format!("hwaddr={}", mac.value));
            }
            match (&nic.address, nic.dhcp) {
                (Some(address), _) => parts.push(format!("ip={}", address.value)),
                (None, true) => parts.push("ip=dhcp".into()),
                _ => {}
            }
            parts.push("type=veth".into());
        }
        GuestKind::Vm => {
            parts.push(match &nic.mac {
                Some(mac) => format!("virtio={}", mac.value),
                None => "virtio".into(),
            });
            parts.push(format!("bridge={bridge}"));
            parts.push(format!("firewall={}", u8::from(nic_firewall(guest))));
        }
    }
    Some(GuestSetting { guest: guest.id, key: "net0".into(), value: parts.join(",") })
}
