//! Installing as one change, against an in-memory target that can be told to fail: a write
//! failing half-way or an action failing puts every earlier file back, and a file that did
//! not exist before is removed again.

use phoenix_core::deploy::{FileWrite, Place, PostAction};
use phoenix_exec::certs::{apply_change, Stage};

/// The fakes never wait: a current-thread runtime runs each change to its end.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(future)
}
use phoenix_exec::{DriverError, Target};
use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Default)]
struct Memory {
    files: RefCell<BTreeMap<String, Vec<u8>>>,
    fail_writes_to: Option<String>,
    fail_restores: bool,
    writes: RefCell<usize>,
}

impl Target for Memory {
    async fn read(&self, place: &Place) -> Result<Option<Vec<u8>>, DriverError> {
        Ok(self.files.borrow().get(&place.path).cloned())
    }
    async fn write(&self, file: &FileWrite) -> Result<(), DriverError> {
        *self.writes.borrow_mut() += 1;
        if self.fail_writes_to.as_deref() == Some(file.place.path.as_str()) {
            return Err(DriverError::new("disk full"));
        }
        if self.fail_restores && *self.writes.borrow() > 2 {
            return Err(DriverError::new("gone"));
        }
        self.files.borrow_mut().insert(file.place.path.clone(), file.content.clone());
        Ok(())
    }
    async fn remove(&self, place: &Place) -> Result<(), DriverError> {
        self.files.borrow_mut().remove(&place.path);
        Ok(())
    }
    async fn run(&self, action: &PostAction) -> Result<(), DriverError> {
        match action {
            PostAction::Shell { command } if command == "fail" => Err(DriverError::new("exit status 1")),
            _ => Ok(()),
        }
    }
}

fn write(path: &str, content: &str) -> FileWrite {
    FileWrite { place: Place::host(path), content: content.as_bytes().to_vec(), owner: None, mode: 0o644 }
}

fn initial() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([("/a".to_string(), b"old a".to_vec()), ("/b".to_string(), b"old b".to_vec())])
}

#[test]
fn a_failing_write_restores_earlier_files_and_removes_new_ones() {
    let target = Memory { files: RefCell::new(initial()), fail_writes_to: Some("/d".into()), ..Default::default() };
    let files = [write("/a", "new a"), write("/c", "new c"), write("/d", "new d")];
    let error = block_on(apply_change(&target, &files, &[])).unwrap_err();
    assert_eq!(error.stage, Stage::Install);
    assert!(error.message.contains("disk full"), "{}", error.message);
    assert!(error.restored);
    assert_eq!(*target.files.borrow(), initial(), "/a restored, /c removed");
}

#[test]
fn a_failing_action_restores_every_file() {
    let target = Memory { files: RefCell::new(initial()), ..Default::default() };
    let files = [write("/a", "new a"), write("/b", "new b")];
    let error = block_on(apply_change(&target, &files, &[PostAction::Shell { command: "fail".into() }])).unwrap_err();
    assert_eq!(error.stage, Stage::PostAction);
    assert!(error.restored);
    assert_eq!(*target.files.borrow(), initial());
    // And without a failure the new contents stay.
    block_on(apply_change(&target, &files, &[PostAction::Shell { command: "true".into() }])).unwrap();
    assert_eq!(target.files.borrow()["/a"], b"new a");
}

#[test]
fn a_rollback_that_cannot_restore_says_so() {
    let target = Memory { files: RefCell::new(initial()), fail_restores: true, ..Default::default() };
    let files = [write("/a", "new a"), write("/b", "new b")];
    let error = block_on(apply_change(&target, &files, &[PostAction::Shell { command: "fail".into() }])).unwrap_err();
    assert!(!error.restored);
    assert!(error.message.contains("could NOT restore"), "{}", error.message);
}
