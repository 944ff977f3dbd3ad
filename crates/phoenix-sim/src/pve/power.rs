//! A guest's run state: `GET .../status/current`, `POST .../status/{start,stop,shutdown,
//! reboot}` and the QEMU guest agent's `POST .../agent/ping`. pve-container checks "already
//! running" / "not running" before forking (`API2/LXC/Status.pm`) and the template in its
//! worker; qemu-server checks nothing in the API and everything in `vm_start`'s worker
//! (`QemuServer.pm`); a NIC on a bridge the node lacks fails the start (pve-common
//! `Network.pm`). The agent answers `settings.agent_delay` after the VM started
//! (`QemuServer/Agent.pm` `assert_agent_available`, its three refusals in order).

use super::guest::{GuestConf, GuestKind};
use super::lifecycle::word;
use super::storage::disk_of;
use super::tasks::{Effect, TaskOutcome};
use super::{Failure, PveSim};
use serde_json::{json, Value};

fn die(message: impl Into<String>) -> Failure {
    Failure::Die(message.into())
}

impl PveSim {
    fn conf_of(&self, kind: GuestKind, vmid: u32) -> Result<GuestConf, Failure> {
        self.config_text(&kind.config_path(&self.node, vmid)).map(|t| GuestConf::parse(t))
    }

    /// Seconds since the guest started (0 when stopped).
    pub fn uptime(&self, vmid: u32) -> u64 {
        self.started.get(&vmid).map_or(0, |t| t.elapsed().as_secs())
    }

    /// `GET .../status/current`.
    pub(super) fn status_current(&self, kind: GuestKind, vmid: u32) -> Result<Value, Failure> {
        let conf = self.conf_of(kind, vmid)?;
        let running = self.running.contains(&vmid);
        let name_key = if kind == GuestKind::Lxc { "hostname" } else { "name" };
        let maxdisk: u64 =
            conf.keys.iter().filter(|(k, _)| *k == "rootfs" || *k == "scsi0").filter_map(|(_, v)| disk_of(v)).map(|(_, s)| s).sum();
        let memory: u64 = conf.keys.get("memory").and_then(|m| m.parse().ok()).unwrap_or(512);
        let mut status = json!({
            "vmid": vmid, "status": if running { "running" } else { "stopped" }, "ha": { "managed": 0 },
            "name": conf.keys.get(name_key).cloned().unwrap_or_else(|| format!("{}{vmid}", word(kind))),
            "uptime": self.uptime(vmid), "maxmem": memory * 1024 * 1024, "maxdisk": maxdisk,
            "cpus": conf.keys.get("cores").and_then(|c| c.parse::<u64>().ok()).unwrap_or(1),
        });
        if let Some(lock) = conf.keys.get("lock") {
            status["lock"] = json!(lock);
        }
        if conf.keys.get("template").is_some_and(|t| t == "1") {
            status["template"] = json!(1);
        }
        if kind == GuestKind::Qemu {
            status["qmpstatus"] = json!(if running { "running" } else { "stopped" });
            if conf.keys.get("agent").is_some_and(|a| a.starts_with('1') || a.contains("enabled=1")) {
                status["agent"] = json!(1);
            }
        }
        Ok(status)
    }

    /// `POST .../status/{action}`.
    pub(super) fn power(&mut self, kind: GuestKind, vmid: u32, action: &str) -> Result<Value, Failure> {
        let conf = self.conf_of(kind, vmid)?;
        let running = self.running.contains(&vmid);
        let template = conf.keys.get("template").is_some_and(|t| t == "1");
        let w = word(kind);
        // pve-container refuses before forking; qemu-server's worker fails.
        let early = |message: String| -> Result<Option<TaskOutcome>, Failure> {
            match kind {
                GuestKind::Lxc => Err(die(message)),
                GuestKind::Qemu => Ok(Some(TaskOutcome::Error(message))),
            }
        };
        let mut forced = match action {
            "start" if running => early(format!("{w} {vmid} already running"))?,
            "stop" | "shutdown" | "reboot" if !running && kind == GuestKind::Lxc => return Err(die(format!("CT {vmid} not running"))),
            "reboot" if !running => return Err(die(format!("VM {vmid} not running"))),
            _ => None,
        };
        if action == "start" && forced.is_none() {
            if template {
                let message = match kind {
                    GuestKind::Lxc => "you can't start a CT if it's a template",
                    GuestKind::Qemu => "you can't start a vm if it's a template",
                };
                forced = Some(TaskOutcome::Error(message.into()));
            } else if let Some(lock) = conf.keys.get("lock") {
                forced = Some(TaskOutcome::Error(format!("{w} is locked ({lock})")));
            } else if let Some(bridge) = self.missing_bridge(&conf) {
                // Plugging the NIC in reads the bridge's MTU first (pve-common
                // `PVE/Network.pm` `read_bridge_mtu`, from `veth_create` and `tap_create`).
                forced = Some(TaskOutcome::Error(format!("bridge '{bridge}' does not exist")));
            }
        }
        let prefix = if kind == GuestKind::Lxc { "vz" } else { "qm" };
        // A start applies what is pending first (pve-container `vm_start`, qemu-server
        // `vm_start_nolock`); qemu-server's stop applies it too (`vm_stop_cleanup` with
        // `apply_pending`), pve-container's does not.
        let pending = Effect::ApplyPending(kind.config_path(&self.node, vmid));
        let effects = match action {
            "start" | "reboot" => vec![Effect::Running(vmid, false), pending, Effect::Running(vmid, true)],
            _ if kind == GuestKind::Qemu => vec![Effect::Running(vmid, false), pending],
            _ => vec![Effect::Running(vmid, false)],
        };
        Ok(Value::String(self.start_task_with(&format!("{prefix}{action}"), &vmid.to_string(), forced, effects, Vec::new())))
    }

    /// The first bridge a NIC of `conf` names that the node does not have.
    fn missing_bridge(&self, conf: &GuestConf) -> Option<String> {
        conf.keys
            .iter()
            .filter(|(key, _)| phoenix_model::pve::fw_names::is_nic_key(key))
            .filter_map(|(_, value)| value.split(',').find_map(|part| part.strip_prefix("bridge=")))
            .find(|bridge| !self.bridges.contains(*bridge))
            .map(str::to_string)
    }

    /// `POST /nodes/{node}/qemu/{vmid}/agent/ping`.
    pub(super) fn agent_ping(&self, vmid: u32) -> Result<Value, Failure> {
        let conf = self.conf_of(GuestKind::Qemu, vmid)?;
        if !conf.keys.get("agent").is_some_and(|a| a.starts_with('1') || a.contains("enabled=1")) {
            return Err(die("No QEMU guest agent configured"));
        }
        if !self.running.contains(&vmid) {
            return Err(die(format!("VM {vmid} is not running")));
        }
        if self.started.get(&vmid).is_none_or(|t| t.elapsed() < self.settings.agent_delay) {
            return Err(die("QEMU guest agent is not running"));
        }
        Ok(json!({ "result": {} }))
    }
}
