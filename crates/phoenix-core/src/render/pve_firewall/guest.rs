//! One `<vmid>.fw` per guest (options and the guest's own rules), and each of its NICs' settings
//! with `firewall=1` wherever the guest's firewall is enabled: without the flag Proxmox filters
//! nothing for that NIC, whatever the rules say.

use super::{flag, rule_lines, VALIDATE};
use crate::deploy::Machine;
use crate::pve_fw::FwFile;
use crate::render::{GuestSetting, Rendered, RenderedFile};
use phoenix_model::model::{Guest, GuestKind, Model, Nic};
use std::collections::BTreeMap;

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
        out.settings.extend(guest.nics.iter().filter_map(|nic| nic_setting(guest, nic, model)));
    }
}

/// Each guest's NICs as a node has them before phoenix deploys a firewall: the rendered values
/// without `firewall=1` (a bare lab, and the simulated nodes of tests, start so).
pub fn nics_before_firewall(rendered: &Rendered) -> BTreeMap<u32, BTreeMap<String, String>> {
    let mut out: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
    for (guest, nics) in crate::render::rendered_nics(rendered) {
        for (key, value) in nics {
            let bare = value.split(',').filter(|part| part.trim() != "firewall=1").collect::<Vec<_>>().join(",");
            out.entry(guest).or_default().insert(key.to_string(), bare);
        }
    }
    out
}

/// Whether phoenix sets `firewall=1` on a NIC: as stated, else when the guest's firewall is on.
pub fn nic_firewall(guest: &Guest, nic: &Nic) -> bool {
    nic.firewall.unwrap_or(guest.firewall.enabled)
}

/// One NIC in Proxmox's syntax (`pct set` / `qm set`), under its `netN` key.
fn nic_setting(guest: &Guest, nic: &Nic, model: &Model) -> Option<GuestSetting> {
    nic.span?;
    let bridge = nic.bridge.clone().or_else(|| model.host.bridge.clone()).unwrap_or_else(|| "vmbr0".into());
    let mut parts = Vec::new();
    match guest.kind {
        GuestKind::Lxc => {
            parts.push(format!("name={}", nic.name.clone().unwrap_or_else(|| format!("eth{}", nic.index))));
            parts.push(format!("bridge={bridge}"));
            parts.push(format!("firewall={}", u8::from(nic_firewall(guest, nic))));
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
            parts.push(format!("firewall={}", u8::from(nic_firewall(guest, nic))));
        }
    }
    Some(GuestSetting { guest: guest.id, key: nic.key(), value: parts.join(",") })
}
