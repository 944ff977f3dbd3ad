//! A real nginx for tests: a scratch prefix (Debian's module folder linked in, since the
//! rendered `include /etc/nginx/modules-enabled/*.conf` loads `modules/...` relative to it),
//! `nginx -t`, and a foreground nginx that is killed, and its folder removed, when dropped.
//! Only loopback addresses are ever listened on or proxied to: callers rewrite the rendered
//! node addresses before starting it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const NGINX: &str = "/usr/sbin/nginx";

/// An empty prefix folder for one nginx, with `ssl/` and the module link.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phoenix-nginx-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ssl")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/nginx/modules", dir.join("modules")).unwrap();
    dir
}

/// The node paths of a rendered nginx.conf moved into `dir`: pid file, logs, no worker user.
pub fn localise(text: &str, dir: &Path) -> String {
    text.replace("/run/nginx.pid", &dir.join("nginx.pid").display().to_string())
        .replace("/var/log/nginx/", &format!("{}/", dir.display()))
        .replace("user www-data;\n", "")
}

fn installed() {
    assert!(Path::new(NGINX).exists(), "nginx is not installed: `apt-get install nginx libnginx-mod-stream` (scripts/test does this)");
}

fn command(dir: &Path) -> Command {
    let mut command = Command::new(NGINX);
    command.arg("-p").arg(dir).arg("-c").arg(dir.join("nginx.conf")).arg("-e").arg(dir.join("error.log"));
    command
}

/// `nginx -t` on `text`, written to `dir/nginx.conf`.
pub fn test(dir: &Path, text: &str) -> Output {
    installed();
    std::fs::write(dir.join("nginx.conf"), text).unwrap();
    command(dir).arg("-t").output().unwrap()
}

/// A running nginx with `text` as its configuration.
pub struct Nginx {
    child: Child,
    pub dir: PathBuf,
}

impl Nginx {
    pub fn start(dir: PathBuf, text: &str) -> Nginx {
        installed();
        std::fs::write(dir.join("nginx.conf"), text).unwrap();
        let child = command(&dir)
            .args(["-g", "daemon off; master_process off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        Nginx { child, dir }
    }

    /// What nginx logged (errors, and the access log when the configuration writes one here).
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("error.log"), read("access.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
