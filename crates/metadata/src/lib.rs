//! Transactional metadata store on redb.
//!
//! Values are JSON documents in per-kind tables ([`Table`]). Reads use a read
//! transaction; writes go through [`Db::update`], one atomic, durable commit.

use std::path::Path;

use berth_errdefs::{Error, Result};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The object kinds berth stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Images,
    Tags,
    Containers,
    Names,
    Volumes,
    Networks,
    /// Images `rmi -f` deleted while stopped containers still use them: out of
    /// every listing and lookup, kept for those containers.
    RetainedImages,
}

impl Table {
    fn def(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(match self {
            Table::Images => "images",
            Table::Tags => "tags",
            Table::Containers => "containers",
            Table::Names => "names",
            Table::Volumes => "volumes",
            Table::Networks => "networks",
            Table::RetainedImages => "retained_images",
        })
    }
    const ALL: [Table; 7] = [
        Table::Images,
        Table::Tags,
        Table::Containers,
        Table::Names,
        Table::Volumes,
        Table::Networks,
        Table::RetainedImages,
    ];
}

fn db_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("metadata store: {e}"))
}

/// The metadata database.
pub struct Db {
    db: redb::Database,
    /// Commits that did not wait for the disk, counted.
    lazy: std::sync::atomic::AtomicU64,
    /// How many of them a finished durable commit covers.
    durable: std::sync::atomic::AtomicU64,
}

impl Db {
    /// Open or create the database file and make sure every table exists.
    pub fn open(path: &Path) -> Result<Db> {
        let db = redb::Database::create(path).map_err(db_err)?;
        let w = db.begin_write().map_err(db_err)?;
        for t in Table::ALL {
            w.open_table(t.def()).map_err(db_err)?;
        }
        w.commit().map_err(db_err)?;
        Ok(Db { db, lazy: Default::default(), durable: Default::default() })
    }

    /// Make every earlier commit durable (an empty durable commit, if any commit since
    /// the last durable one skipped the disk).
    pub fn flush(&self) -> Result<()> {
        self.flush_to(self.lazy_commits())
    }

    /// How many lazy commits there have been: after a caller's own lazy commit, a
    /// point that [`Db::flush_to`] makes durable.
    pub fn lazy_commits(&self) -> u64 {
        self.lazy.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Make the first `point` lazy commits durable. Concurrent callers share the disk
    /// flush (group commit): whoever gets the write lock after a flush that covers
    /// their point returns without one.
    pub fn flush_to(&self, point: u64) -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.durable.load(SeqCst) >= point {
            return Ok(());
        }
        let w = self.db.begin_write().map_err(db_err)?;
        if self.durable.load(SeqCst) >= point {
            return w.abort().map_err(db_err);
        }
        self.commit_durable(w)
    }

    /// Commit `w` waiting for the disk: it makes every lazy commit before it durable
    /// too (none can come between: `w` holds redb's write lock).
    fn commit_durable(&self, w: redb::WriteTransaction) -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let upto = self.lazy.load(SeqCst);
        w.commit().map_err(db_err)?;
        self.durable.fetch_max(upto, SeqCst);
        Ok(())
    }

    /// Read one value.
    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(table.def()).map_err(db_err)?;
        match t.get(key).map_err(db_err)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(db_err)?)),
            None => Ok(None),
        }
    }

    /// Every (key, value) of a table, in key order.
    pub fn list<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(table.def()).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            out.push((k.value().to_owned(), serde_json::from_slice(v.value()).map_err(db_err)?));
        }
        Ok(out)
    }

    /// Run `f` in one write transaction; it commits only if `f` returns Ok.
    pub fn update<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<R>) -> Result<R> {
        self.write(true, f)
    }

    /// [`Db::update`] without waiting for the disk: the commit is atomic and visible at
    /// once, but a crash may roll it back to the last durable commit, until the next
    /// durable commit or [`Db::flush`]. Only for state that can be recovered from
    /// elsewhere.
    pub fn update_lazy<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<R>) -> Result<R> {
        self.write(false, f)
    }

    fn write<R>(&self, durable: bool, f: impl FnOnce(&mut Tx<'_>) -> Result<R>) -> Result<R> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut w = self.db.begin_write().map_err(db_err)?;
        if !durable {
            w.set_durability(redb::Durability::None).map_err(db_err)?;
        }
        let r = {
            let mut tx = Tx { w: &w };
            f(&mut tx)?
        };
        if durable {
            self.commit_durable(w)?;
        } else {
            w.commit().map_err(db_err)?;
            self.lazy.fetch_add(1, SeqCst);
        }
        Ok(r)
    }

    /// Write one value in its own transaction.
    pub fn put<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<()> {
        self.update(|tx| tx.put(table, key, value))
    }

    /// Delete one key in its own transaction.
    pub fn delete(&self, table: Table, key: &str) -> Result<()> {
        self.update(|tx| tx.delete(table, key).map(|_| ()))
    }
}

/// A write transaction in progress.
pub struct Tx<'a> {
    w: &'a redb::WriteTransaction,
}

impl Tx<'_> {
    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        let t = self.w.open_table(table.def()).map_err(db_err)?;
        let v = t.get(key).map_err(db_err)?;
        match v {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(db_err)?)),
            None => Ok(None),
        }
    }

    pub fn put<T: Serialize>(&mut self, table: Table, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(db_err)?;
        let mut t = self.w.open_table(table.def()).map_err(db_err)?;
        t.insert(key, bytes.as_slice()).map_err(db_err)?;
        Ok(())
    }

    /// Delete a key; returns whether it existed.
    pub fn delete(&mut self, table: Table, key: &str) -> Result<bool> {
        let mut t = self.w.open_table(table.def()).map_err(db_err)?;
        let existed = t.remove(key).map_err(db_err)?.is_some();
        Ok(existed)
    }

    /// Every (key, value) of a table, seen from inside this transaction.
    pub fn list<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>> {
        let t = self.w.open_table(table.def()).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            out.push((k.value().to_owned(), serde_json::from_slice(v.value()).map_err(db_err)?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("m.redb")).unwrap();
        db.put(Table::Tags, "busybox:latest", &"sha256:1".to_string()).unwrap();
        db.put(Table::Tags, "alpine:3", &"sha256:2".to_string()).unwrap();
        let v: Option<String> = db.get(Table::Tags, "busybox:latest").unwrap();
        assert_eq!(v.as_deref(), Some("sha256:1"));
        let all: Vec<(String, String)> = db.list(Table::Tags).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, "alpine:3");
        db.delete(Table::Tags, "alpine:3").unwrap();
        assert!(db.get::<String>(Table::Tags, "alpine:3").unwrap().is_none());
    }

    #[test]
    fn failed_update_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("m.redb")).unwrap();
        let r: Result<()> = db.update(|tx| {
            tx.put(Table::Names, "web", &"id1")?;
            Err(Error::conflict("name taken"))
        });
        assert!(r.is_err());
        assert!(db.get::<String>(Table::Names, "web").unwrap().is_none());
    }

    #[test]
    fn lazy_writes_are_visible_and_made_durable_by_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.redb");
        {
            let db = Db::open(&p).unwrap();
            db.update_lazy(|tx| tx.put(Table::Containers, "a", &1)).unwrap();
            assert_eq!(db.get::<i32>(Table::Containers, "a").unwrap(), Some(1));
            db.put(Table::Containers, "b", &2).unwrap();
        }
        let db = Db::open(&p).unwrap();
        assert_eq!(db.get::<i32>(Table::Containers, "a").unwrap(), Some(1));
    }

    #[test]
    fn flush_makes_lazy_writes_durable_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.redb");
        {
            let db = Db::open(&p).unwrap();
            db.update_lazy(|tx| tx.put(Table::Containers, "a", &1)).unwrap();
            let point = db.lazy_commits();
            assert!(db.durable.load(std::sync::atomic::Ordering::SeqCst) < point);
            db.flush().unwrap();
            assert_eq!(db.durable.load(std::sync::atomic::Ordering::SeqCst), point);
            db.flush().unwrap();
            db.flush_to(point).unwrap();
        }
        let db = Db::open(&p).unwrap();
        assert_eq!(db.get::<i32>(Table::Containers, "a").unwrap(), Some(1));
    }

    #[test]
    fn concurrent_flushes_cover_every_lazy_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.redb");
        {
            let db = std::sync::Arc::new(Db::open(&p).unwrap());
            let threads: Vec<_> = (0..16)
                .map(|i| {
                    let db = db.clone();
                    std::thread::spawn(move || {
                        db.update_lazy(|tx| tx.put(Table::Containers, &format!("c{i}"), &i)).unwrap();
                        let point = db.lazy_commits();
                        db.flush_to(point).unwrap();
                        assert!(db.durable.load(std::sync::atomic::Ordering::SeqCst) >= point);
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
        let db = Db::open(&p).unwrap();
        for i in 0..16 {
            assert_eq!(db.get::<i32>(Table::Containers, &format!("c{i}")).unwrap(), Some(i));
        }
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.redb");
        {
            let db = Db::open(&p).unwrap();
            db.put(Table::Containers, "abc", &serde_json::json!({"Name": "/x"})).unwrap();
        }
        let db = Db::open(&p).unwrap();
        let v: serde_json::Value = db.get(Table::Containers, "abc").unwrap().unwrap();
        assert_eq!(v["Name"], "/x");
    }
}
