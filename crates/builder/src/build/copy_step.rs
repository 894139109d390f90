//! The COPY/ADD step: a quick cache key from the request as written and what its
//! sources hold (no root filesystem needed on a hit), then the full plan against
//! the parent image (destination symlinks, existing directories, `--chown` names).

use berth_errdefs::Error;

use super::{fail, Driver, Failure, Stage};
use crate::cache::{cache_key, KeyInput};
use crate::config;
use crate::context::Context;
use crate::copy::{self, CopyRequest};
use crate::plan;

impl Driver<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy(
        &mut self,
        df: &berth_dockerfile::Dockerfile,
        stage_idx: usize,
        st: &mut Stage,
        kw: &str,
        mut req: CopyRequest,
        chown: &str,
        from: &str,
    ) -> std::result::Result<(), Failure> {
        // Where the files come from.
        let src_image = if from.is_empty() {
            None
        } else {
            Some(match plan::stage_ref(df, from, stage_idx) {
                Some(j) => self
                    .results
                    .get(j)
                    .ok_or_else(|| fail(format!("stage {from} was not built")))?,
                None => self
                    .image_or_pull(from, false)
                    .map_err(|f| Failure { message: format!("invalid from flag value {from}: {}", f.message), ..f })?
                    .0,
            })
        };
        // The quick key: the parent, the request as written and what the sources
        // hold (an image's files are fixed by its id), so a cache hit needs neither
        // the parent's nor the source image's root filesystem.
        let parent = st.image.clone().unwrap_or_default();
        let sources = match &src_image {
            Some(id) => Some(format!("image:{id}")),
            None => copy::source_digest(self.ctx, &req).map(|d| format!("context:{d}")),
        };
        let quick_key = sources.map(|src| {
            let names: Vec<&str> = req.inline.iter().map(|f| f.name.as_str()).collect();
            let text = format!(
                "{kw} (before resolution)\nchown={chown:?}\nchmod={:?}\nsources={:?}\ndest={:?}\nworkdir={:?}\nparents={} exclude={:?} unpack={:?} inline={names:?}",
                req.chmod, req.sources, req.dest, req.workdir, req.parents, req.excludes, req.unpack
            );
            cache_key(&KeyInput {
                parent: &parent,
                text: &text,
                args: &[],
                content: Some(&src),
            })
        });
        if let Some(k) = &quick_key {
            if self.use_cache(st, k, None) {
                return Ok(());
            }
        }
        let from_ctx = if let Some(src_image) = &src_image {
            let prefixes: Vec<String> = req
                .sources
                .iter()
                .map(|s| Context::literal_prefix(s))
                .collect();
            let mut loaded = Context::default();
            self.be.with_rootfs(src_image, &mut |root| {
                loaded = Context::from_dir(root, &prefixes)?;
                Ok(())
            })?;
            Some(loaded)
        } else {
            None
        };
        let ctx = from_ctx.as_ref().unwrap_or(self.ctx);
        let mut plan_result: Option<std::result::Result<copy::CopyPlan, Error>> = None;
        match st.image.clone() {
            Some(id) => {
                self.be.with_rootfs(&id, &mut |root| {
                    if !chown.is_empty() {
                        let passwd =
                            std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
                        let group =
                            std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
                        req.chown = Some(copy::parse_chown(chown, &passwd, &group)?);
                    }
                    let abs = if req.dest.starts_with('/') {
                        req.dest.clone()
                    } else {
                        let wd = if req.workdir.is_empty() {
                            "/"
                        } else {
                            req.workdir.as_str()
                        };
                        format!("{wd}/{}", req.dest)
                    };
                    if req.dest != "." {
                        req.dest = copy::resolve_dest(root, &abs);
                    }
                    let exists = |p: &str| {
                        std::fs::symlink_metadata(root.join(p)).ok().map(|m| copy::Existing::of(&m))
                    };
                    plan_result = Some(copy::plan_copy(ctx, &req, &exists));
                    Ok(())
                })?;
            }
            None => {
                if !chown.is_empty() {
                    req.chown = Some(copy::parse_chown(chown, "", "")?);
                }
                plan_result = Some(copy::plan_copy(ctx, &req, &|_| None));
            }
        }
        let plan = plan_result.ok_or_else(|| fail("copy was not planned"))??;
        let created_by = config::nop(&format!("{kw} {} in {} ", plan.src_desc, plan.dest));
        let mut text = format!(
            "{kw} --chown={chown} --chmod={:?} {:?} {}",
            req.chmod, req.sources, req.dest
        );
        if req.parents || !req.excludes.is_empty() || req.unpack.is_some() || !req.inline.is_empty()
        {
            let names: Vec<&str> = req.inline.iter().map(|f| f.name.as_str()).collect();
            text.push_str(&format!(
                " parents={} exclude={:?} unpack={:?} inline={names:?}",
                req.parents, req.excludes, req.unpack
            ));
        }
        let key = cache_key(&KeyInput {
            parent: &parent,
            text: &text,
            args: &[],
            content: Some(&plan.content_hash),
        });
        let stage_cfg = st.cfg.clone();
        if self.use_cache(st, &key, Some((&created_by, &stage_cfg))) {
            if let (Some(q), Some(id)) = (&quick_key, &st.image) {
                self.be.cache_put(q, id)?;
            }
            return Ok(());
        }
        let layer = copy::write_layer(&plan.entries)?;
        let diff = self.be.add_layer(&layer)?;
        let cfg = st.cfg.clone();
        self.commit(st, cfg, Some(diff), created_by, &key, None, None)?;
        if let (Some(q), Some(id)) = (&quick_key, &st.image) {
            self.be.cache_put(q, id)?;
        }
        self.emit_result(st);
        Ok(())
    }
}
