//! The demo server's SFTP subsystem (russh-sftp's server side) over the local file system,
//! as the current user. Relative paths start at the demo's private HOME.
//!
//! It answers everything agentssh's SFTP client uses (open/read/write/close, stat family,
//! setstat, directories, remove, rename, links, realpath) plus the OpenSSH extensions
//! `posix-rename@openssh.com` and `fsync@openssh.com`. Open handles are capped, and a read
//! returns at most [`MAX_READ`] bytes, so a client cannot make it hold unbounded memory.

use std::collections::HashMap;
use std::fs::{File as FsFile, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;

/// Most bytes one read returns.
const MAX_READ: u32 = 256 * 1024;
/// Most handles open at once per SFTP session.
const MAX_HANDLES: usize = 256;
/// Directory entries per READDIR reply.
const DIR_BATCH: usize = 128;

enum Open {
    File(FsFile),
    Dir(Vec<File>),
}

/// One SFTP session.
pub struct DemoSftp {
    home: PathBuf,
    handles: HashMap<String, Open>,
    next: u64,
}

impl DemoSftp {
    /// A session whose relative paths start at `home`.
    pub fn new(home: PathBuf) -> DemoSftp {
        DemoSftp {
            home,
            handles: HashMap::new(),
            next: 1,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        if p.is_empty() {
            self.home.clone()
        } else {
            self.home.join(p)
        }
    }

    fn insert(&mut self, open: Open) -> Result<String, StatusReply> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure.with_message("too many open handles"));
        }
        let h = format!("h{}", self.next);
        self.next += 1;
        self.handles.insert(h.clone(), open);
        Ok(h)
    }

    fn file(&self, handle: &str) -> Result<&FsFile, StatusReply> {
        match self.handles.get(handle) {
            Some(Open::File(f)) => Ok(f),
            _ => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }
}

fn io_err(e: io::Error) -> StatusReply {
    let code = match e.kind() {
        io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(e.to_string())
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".to_string(),
        language_tag: "en-US".to_string(),
    }
}

/// Attributes from metadata; `permissions` keeps the file-type bits (lstat sees symlinks).
fn attrs_of(m: &Metadata) -> FileAttributes {
    FileAttributes {
        size: Some(m.size()),
        uid: Some(m.uid()),
        gid: Some(m.gid()),
        permissions: Some(m.mode()),
        atime: Some(u32::try_from(m.atime().max(0)).unwrap_or(u32::MAX)),
        mtime: Some(u32::try_from(m.mtime().max(0)).unwrap_or(u32::MAX)),
        ..Default::default()
    }
}

/// Applies SETSTAT attributes to `path`.
fn set_attrs(path: &Path, a: &FileAttributes) -> io::Result<()> {
    if let Some(size) = a.size {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(size)?;
    }
    if let Some(mode) = a.permissions {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if let (Some(at), Some(mt)) = (a.atime, a.mtime) {
        let ts = |s: u32| nix::sys::time::TimeSpec::new(i64::from(s), 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &ts(at),
            &ts(mt),
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .map_err(io::Error::from)?;
    }
    Ok(())
}

/// Splits an SSH string (u32 length + bytes) off the front of `data`.
fn ssh_string(data: &mut &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let s = data.get(4..4 + len)?;
    let out = String::from_utf8(s.to_vec()).ok();
    *data = &data[4 + len..];
    out
}

impl russh_sftp::server::Handler for DemoSftp {
    type Error = StatusReply;

    fn unimplemented(&self) -> StatusReply {
        StatusReply::new(StatusCode::OpUnsupported)
    }

    async fn init(
        &mut self,
        _version: u32,
        _ext: HashMap<String, String>,
    ) -> Result<Version, StatusReply> {
        let mut v = Version::new();
        v.extensions
            .insert("posix-rename@openssh.com".into(), "1".into());
        v.extensions
            .insert(russh_sftp::extensions::FSYNC.into(), "1".into());
        Ok(v)
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, StatusReply> {
        let mut opts: std::fs::OpenOptions = pflags.into();
        opts.mode(attrs.permissions.unwrap_or(0o644) & 0o7777);
        let f = opts.open(self.path(&filename)).map_err(io_err)?;
        Ok(Handle {
            id,
            handle: self.insert(Open::File(f))?,
        })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, StatusReply> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, StatusReply> {
        let f = self.file(&handle)?;
        let mut buf = vec![0u8; len.min(MAX_READ) as usize];
        let n = f.read_at(&mut buf, offset).map_err(io_err)?;
        if n == 0 && !buf.is_empty() {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        buf.truncate(n);
        Ok(Data { id, data: buf })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, StatusReply> {
        self.file(&handle)?
            .write_all_at(&data, offset)
            .map_err(io_err)?;
        Ok(ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let m = std::fs::symlink_metadata(self.path(&path)).map_err(io_err)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&m),
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, StatusReply> {
        let m = std::fs::metadata(self.path(&path)).map_err(io_err)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&m),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, StatusReply> {
        let m = self.file(&handle)?.metadata().map_err(io_err)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&m),
        })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        set_attrs(&self.path(&path), &attrs).map_err(io_err)?;
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        let f = self.file(&handle)?;
        // Through /proc/self/fd so an unlinked or renamed file still gets its attributes.
        let fd = std::os::fd::AsRawFd::as_raw_fd(f);
        if let Some(size) = attrs.size {
            f.set_len(size).map_err(io_err)?;
        }
        let rest = FileAttributes {
            size: None,
            ..attrs
        };
        set_attrs(Path::new(&format!("/proc/self/fd/{fd}")), &rest).map_err(io_err)?;
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, StatusReply> {
        let mut entries = Vec::new();
        for e in std::fs::read_dir(self.path(&path)).map_err(io_err)? {
            let e = e.map_err(io_err)?;
            let Ok(m) = e.metadata() else { continue };
            entries.push(File::new(e.file_name().to_string_lossy(), attrs_of(&m)));
        }
        entries.reverse();
        Ok(Handle {
            id,
            handle: self.insert(Open::Dir(entries))?,
        })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusReply> {
        let Some(Open::Dir(entries)) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure.with_message("invalid handle"));
        };
        if entries.is_empty() {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        let take = entries.len().min(DIR_BATCH);
        let files = entries
            .split_off(entries.len() - take)
            .into_iter()
            .rev()
            .collect();
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, StatusReply> {
        std::fs::remove_file(self.path(&filename)).map_err(io_err)?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusReply> {
        let mut b = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut b, attrs.permissions.unwrap_or(0o755) & 0o7777);
        b.create(self.path(&path)).map_err(io_err)?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, StatusReply> {
        std::fs::remove_dir(self.path(&path)).map_err(io_err)?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        let full = self.path(&path);
        let real = std::fs::canonicalize(&full).unwrap_or(full);
        Ok(Name {
            id,
            files: vec![File::dummy(real.to_string_lossy())],
        })
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, StatusReply> {
        let to = self.path(&newpath);
        // SFTP v3 rename does not replace (posix-rename does).
        if std::fs::symlink_metadata(&to).is_ok() {
            return Err(StatusCode::Failure.with_message("the target exists"));
        }
        std::fs::rename(self.path(&oldpath), to).map_err(io_err)?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, StatusReply> {
        let target = std::fs::read_link(self.path(&path)).map_err(io_err)?;
        Ok(Name {
            id,
            files: vec![File::dummy(target.to_string_lossy())],
        })
    }

    async fn symlink(
        &mut self,
        id: u32,
        linkpath: String,
        targetpath: String,
    ) -> Result<Status, StatusReply> {
        std::os::unix::fs::symlink(targetpath, self.path(&linkpath)).map_err(io_err)?;
        Ok(ok(id))
    }

    async fn extended(
        &mut self,
        id: u32,
        request: String,
        data: Vec<u8>,
    ) -> Result<Packet, StatusReply> {
        let mut rest = data.as_slice();
        let bad = || StatusReply::new(StatusCode::BadMessage);
        match request.as_str() {
            "posix-rename@openssh.com" => {
                let from = ssh_string(&mut rest).ok_or_else(bad)?;
                let to = ssh_string(&mut rest).ok_or_else(bad)?;
                std::fs::rename(self.path(&from), self.path(&to)).map_err(io_err)?;
                Ok(Packet::Status(ok(id)))
            }
            "fsync@openssh.com" => {
                let h = ssh_string(&mut rest).ok_or_else(bad)?;
                self.file(&h)?.sync_all().map_err(io_err)?;
                Ok(Packet::Status(ok(id)))
            }
            _ => Err(self.unimplemented()),
        }
    }
}
