//! Removing images as `docker rmi` and `docker image prune` do: untagging,
//! the conflicts that stop a removal (dependent child images, containers, other
//! references), and pruning the untagged parents an image leaves behind.

use std::collections::{HashMap, HashSet};

use berth_api::models::ImageDeleteResponseItem;
use berth_errdefs::{Error, Result};
use berth_metadata::Table;

use crate::reference::Reference;
use crate::store::{ImageRecord, ImageStore, InUse};

/// What a removal did: Docker's response items and the layer bytes freed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Removal {
    pub items: Vec<ImageDeleteResponseItem>,
    pub reclaimed: u64,
}

/// Why an image cannot go (moby's `imageDeleteConflict`).
struct Conflict {
    id: String,
    /// Hard conflicts cannot be forced.
    hard: bool,
    /// A container uses the image.
    used: bool,
    message: String,
}

impl Conflict {
    fn error(&self) -> Error {
        let force = if self.hard {
            "cannot be forced"
        } else {
            "must be forced"
        };
        Error::conflict(format!(
            "conflict: unable to delete {} ({force}) - {}",
            short(&self.id),
            self.message
        ))
    }
}

const CHILD: u8 = 1;
const RUNNING: u8 = 2;
const REFERENCE: u8 = 4;
const STOPPED: u8 = 8;
const HARD: u8 = CHILD | RUNNING;
const SOFT: u8 = REFERENCE | STOPPED;

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn untagged(t: &str) -> ImageDeleteResponseItem {
    ImageDeleteResponseItem {
        untagged: Some(t.to_owned()),
        deleted: None,
    }
}

impl ImageStore {
    /// The parent image id an image's config names (builds set it), if any.
    pub fn parent_of(&self, rec: &ImageRecord) -> Result<Option<String>> {
        Ok(self.meta(rec)?.parent.clone())
    }

    /// Every image id that is some image's parent → its children.
    pub fn children(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for r in self.list()? {
            if let Some(p) = self.parent_of(&r)? {
                out.entry(p).or_default().push(r.id);
            }
        }
        Ok(out)
    }

    fn has_children(&self, id: &str) -> Result<bool> {
        for r in self.list()? {
            if self.parent_of(&r)?.as_deref() == Some(id) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// No tag and no child image (moby's `imageIsDangling`).
    fn is_dangling(&self, id: &str) -> Result<bool> {
        Ok(self.tags_of(id)?.is_empty() && !self.has_children(id)?)
    }

    fn conflict(&self, id: &str, mask: u8, in_use: InUse<'_>) -> Result<Option<Conflict>> {
        let c = |hard, used, message: String| {
            Some(Conflict {
                id: id.to_owned(),
                hard,
                used,
                message,
            })
        };
        if mask & CHILD != 0 && self.has_children(id)? {
            return Ok(c(true, false, "image has dependent child images".into()));
        }
        let user = in_use(id);
        if mask & RUNNING != 0 {
            if let Some((cid, true)) = &user {
                let m = format!("image is being used by running container {}", short(cid));
                return Ok(c(true, true, m));
            }
        }
        if mask & REFERENCE != 0 && !self.tags_of(id)?.is_empty() {
            return Ok(c(
                false,
                false,
                "image is referenced in multiple repositories".into(),
            ));
        }
        if mask & STOPPED != 0 {
            if let Some((cid, false)) = &user {
                let m = format!("image is being used by stopped container {}", short(cid));
                return Ok(c(false, true, m));
            }
        }
        Ok(None)
    }

    fn untag(&self, t: &str, out: &mut Removal) -> Result<()> {
        self.db.delete(Table::Tags, t)?;
        out.items.push(untagged(t));
        Ok(())
    }

    /// Remove an image by name or id, as `docker rmi` does (moby's `ImageDelete`): a
    /// tag is untagged and the image goes with its last tag; by id, a single tag goes
    /// with it. An image with child images is never deleted; one a running container
    /// uses is never deleted; one a stopped container uses, or with several tags,
    /// only with `force`. With `prune` (Docker's default), parents left untagged and
    /// childless go too. `in_use` reports a container using an image id.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        prune: bool,
        in_use: InUse<'_>,
    ) -> Result<Removal> {
        let rec = self.resolve(name)?;
        let id = rec.id.clone();
        let tags = self.tags_of(&id)?;
        let by_ref = Reference::parse_tagged(name)
            .ok()
            .map(|r| r.familiar())
            .filter(|t| tags.contains(t));
        let mut out = Removal::default();
        let mut quiet = false;
        if let Some(t) = &by_ref {
            if !force && tags.len() == 1 {
                if let Some((cid, _)) = in_use(&id) {
                    return Err(Error::conflict(format!(
                        "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                        short(&cid),
                        short(&id)
                    )));
                }
            }
            self.untag(t, &mut out)?;
            if tags.len() > 1 {
                return Ok(out);
            }
            quiet = true;
        } else if tags.len() <= 1 {
            let mask = if force { HARD } else { HARD | STOPPED };
            if let Some(c) = self.conflict(&id, mask, in_use)? {
                return Err(c.error());
            }
            for t in &tags {
                self.untag(t, &mut out)?;
            }
        }
        self.delete_helper(&id, force, prune, quiet, in_use, &mut out)?;
        Ok(out)
    }

    /// moby's `imageDeleteHelper`: the image itself, then (with `prune`) its parent,
    /// quietly (a parent that cannot go is simply kept).
    fn delete_helper(
        &self,
        id: &str,
        force: bool,
        prune: bool,
        quiet: bool,
        in_use: InUse<'_>,
        out: &mut Removal,
    ) -> Result<()> {
        let mask = if force { HARD } else { HARD | SOFT };
        if let Some(c) = self.conflict(id, mask, in_use)? {
            if quiet && (!self.is_dangling(id)? || c.used) {
                return Ok(());
            }
            return Err(c.error());
        }
        let Some(rec) = self.get(id)? else {
            return Ok(());
        };
        // Forced while a stopped container uses it (a running one is a hard conflict):
        // deleted as dockerd deletes it, its config and layers kept for the container.
        let retain = force && in_use(id).is_some();
        let parent = self.parent_of(&rec)?;
        let tags = self.tags_of(id)?;
        self.db.update(|tx| {
            for t in &tags {
                tx.delete(Table::Tags, t)?;
            }
            tx.delete(Table::Images, id)?;
            if retain {
                tx.put(Table::RetainedImages, id, &rec)?;
            }
            Ok(())
        })?;
        self.forget_meta(id);
        for t in &tags {
            out.items.push(untagged(t));
        }
        out.items.push(ImageDeleteResponseItem {
            deleted: Some(id.to_owned()),
            untagged: None,
        });
        if !retain {
            out.reclaimed += self.collect_garbage(&rec)?;
        }
        match parent {
            Some(p) if prune && self.get(&p)?.is_some() => {
                self.delete_helper(&p, false, true, true, in_use, out)
            }
            _ => Ok(()),
        }
    }

    /// `docker image prune`: unused images without a tag and without child images
    /// (and the untagged parents they leave), or with `all` every image no container
    /// uses, tags and all. Conflicts skip an image. Returns what went.
    pub fn prune(
        &self,
        all: bool,
        keep: &dyn Fn(&ImageRecord) -> bool,
        in_use: InUse<'_>,
    ) -> Result<Removal> {
        let mut out = Removal::default();
        let mut tried: HashSet<String> = HashSet::new();
        // Removing a child can free its parent: go round until nothing changes.
        loop {
            let children = self.children()?;
            let mut progress = false;
            for rec in self.list()? {
                if tried.contains(&rec.id) || keep(&rec) || in_use(&rec.id).is_some() {
                    continue;
                }
                let tags = self.tags_of(&rec.id)?;
                if children.contains_key(&rec.id) || (!all && !tags.is_empty()) {
                    continue;
                }
                tried.insert(rec.id.clone());
                let names = if tags.is_empty() {
                    vec![rec.id.clone()]
                } else {
                    tags
                };
                for n in names {
                    if let Ok(r) = self.remove(&n, false, true, in_use) {
                        out.items.extend(r.items);
                        out.reclaimed += r.reclaimed;
                        progress = true;
                    }
                }
            }
            if !progress {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImageConfigFile;
    use crate::store::tests::store;

    /// A chain base ← a ← b ← c of images (each with its own one-file layer),
    /// `c` tagged `app`.
    fn chain(s: &ImageStore) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        let mut cfg = ImageConfigFile {
            os: "linux".into(),
            ..Default::default()
        };
        cfg.rootfs.kind = "layers".into();
        for name in ["base", "a", "b", "c"] {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_path(name).unwrap();
            h.set_size(1000);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append(&h, &vec![name.as_bytes()[0]; 1000][..]).unwrap();
            let (diff, _) = s.add_layer(&b.into_inner().unwrap()[..]).unwrap();
            cfg.rootfs.diff_ids.push(diff);
            cfg.parent = ids.last().cloned();
            ids.push(s.create_image(&cfg).unwrap().id);
        }
        s.tag(&ids[3], &Reference::parse_tagged("app").unwrap())
            .unwrap();
        s.tag(&ids[0], &Reference::parse_tagged("base").unwrap())
            .unwrap();
        ids
    }

    fn deleted(r: &Removal) -> Vec<String> {
        r.items.iter().filter_map(|i| i.deleted.clone()).collect()
    }

    #[test]
    fn removing_the_tag_prunes_the_untagged_parents_up_to_a_tagged_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let ids = chain(&s);
        assert_eq!(s.children().unwrap()[&ids[1]], [ids[2].clone()]);
        // An image with children cannot go by id, even forced.
        let e = s.remove(&ids[1], true, true, &|_| None).unwrap_err();
        assert_eq!(
            e.message(),
            format!("conflict: unable to delete {} (cannot be forced) - image has dependent child images", &ids[1][7..19])
        );
        // c, b and a each added a layer of their own.
        let own: u64 = ids[1..]
            .iter()
            .map(|id| {
                let rec = s.get(id).unwrap().unwrap();
                s.content().size(rec.layers.last().unwrap()).unwrap()
            })
            .sum();
        let r = s.remove("app", false, true, &|_| None).unwrap();
        assert_eq!(r.items[0].untagged.as_deref(), Some("app:latest"));
        assert_eq!(
            deleted(&r),
            [ids[3].clone(), ids[2].clone(), ids[1].clone()]
        );
        assert_eq!(r.reclaimed, own);
        assert!(s.get(&ids[0]).unwrap().is_some(), "the tagged base stays");
        assert!(s
            .snapshotter()
            .has_layer(&s.get(&ids[0]).unwrap().unwrap().layers[0]));
    }

    #[test]
    fn no_prune_keeps_the_parents_and_prune_takes_dangling_heads_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let ids = chain(&s);
        let r = s.remove("app", false, false, &|_| None).unwrap();
        assert_eq!(deleted(&r), [ids[3].clone()]);
        assert!(s.get(&ids[2]).unwrap().is_some());
        // b is now a dangling head; a has a child (b), base is tagged.
        let r = s.prune(false, &|_| false, &|_| None).unwrap();
        assert_eq!(deleted(&r), [ids[2].clone(), ids[1].clone()]);
        assert!(s.get(&ids[0]).unwrap().is_some());
        // A container's image is never pruned, tagged or not.
        let ids = chain(&s);
        let uses = |id: &str| (id == ids[3]).then(|| ("c".repeat(64), false));
        let r = s.prune(true, &|_| false, &uses).unwrap();
        assert!(deleted(&r).is_empty(), "{r:?}");
        let r = s.prune(true, &|_| false, &|_| None).unwrap();
        assert_eq!(deleted(&r).len(), 4, "{r:?}");
        assert!(s.list().unwrap().is_empty());
        assert!(s.content().list().unwrap().is_empty());
    }

    #[test]
    fn containers_and_several_tags_need_force() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let ids = chain(&s);
        let c = ids[3].clone();
        let running = |id: &str| (id == c).then(|| ("f".repeat(64), true));
        let e = s.remove(&c, true, true, &running).unwrap_err();
        assert!(
            e.message().contains(
                "(cannot be forced) - image is being used by running container ffffffffffff"
            ),
            "{e:?}"
        );
        let e = s.remove("app", false, true, &running).unwrap_err();
        assert!(
            e.message()
                .contains("unable to remove repository reference \"app\" (must force)"),
            "{e:?}"
        );
        s.tag(&c, &Reference::parse_tagged("app2").unwrap())
            .unwrap();
        let e = s.remove(&c, false, true, &|_| None).unwrap_err();
        assert!(
            e.message()
                .contains("(must be forced) - image is referenced in multiple repositories"),
            "{e:?}"
        );
        let r = s.remove(&c, true, true, &|_| None).unwrap();
        assert_eq!(r.items.iter().filter(|i| i.untagged.is_some()).count(), 2);
        assert_eq!(deleted(&r).len(), 3);
    }
    /// dockerd's forced removal of an image a stopped container uses: untagged and
    /// deleted (with the untagged parents it leaves), out of every lookup but the
    /// container's, its layers kept until that container goes.
    #[test]
    fn forced_removal_under_a_stopped_container_keeps_only_what_the_container_needs() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let ids = chain(&s);
        let c = ids[3].clone();
        let top = s.get(&c).unwrap().unwrap().layers[3].clone();
        let base_layer = s.get(&ids[0]).unwrap().unwrap().layers[0].clone();
        let stopped = |id: &str| (id == c).then(|| ("f".repeat(64), false));
        let r = s.remove("app", true, true, &stopped).unwrap();
        assert_eq!(r.items[0].untagged.as_deref(), Some("app:latest"));
        assert_eq!(deleted(&r), vec![c.clone(), ids[2].clone(), ids[1].clone()]);
        assert!(s.get(&c).unwrap().is_none() && s.resolve(&c).is_err());
        assert!(s.list().unwrap().iter().all(|i| i.id != c));
        assert_eq!(s.get_for_container(&c).unwrap().map(|i| i.id), Some(c.clone()));
        assert!(s.content().exists(&top), "the container's layers stay");
        // A failed pull or load of the same layer does not take it either.
        s.remove_layer_if_unused(&top).unwrap();
        assert!(s.content().exists(&top));
        // Still in use: kept; then the container goes and so does all only it needed.
        assert_eq!(s.release_retained(&c, &stopped).unwrap(), 0);
        assert!(s.release_retained(&c, &|_| None).unwrap() > 0);
        assert!(s.get_for_container(&c).unwrap().is_none());
        assert!(!s.content().exists(&top));
        assert!(s.content().exists(&base_layer), "the base image keeps its layer");
        assert!(s.retained().unwrap().is_empty());
    }
}
