//! The rebuild path of a reload, for a dproc running the image built from
//! its Dockerfile: a save the image depends on (the Dockerfile, its
//! `.dockerignore`, a file it names as a `COPY`/`ADD` source: the rule is
//! `launch::dockerfile`'s) builds the image again through the Docker
//! engine and delivers it to the cluster, as the launch did, and rolls
//! the Deployment out to the new image. A build or a delivery that fails
//! changes nothing in the cluster: the pods go on running the old image.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::live::Diff;
use super::rollout::{self, RolloutError};
use crate::launch::bundle::Bundle;
use crate::launch::delivery::{self, DeliveryError};
use crate::launch::dockerfile;
use crate::launch::image::{self, Build, BuildError, Built, Progress, Rebuild};
use crate::launch::objects::Spec;
use crate::printer::Printer;

/// Why a rebuild did not end with the new image running.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The image was not built: nothing changed in the cluster.
    #[error("the pods go on running the old image: {0}")]
    Build(#[source] BuildError),
    /// Built, but it did not reach the cluster: nothing changed there.
    #[error("the pods go on running the old image: {0}")]
    Delivery(#[source] DeliveryError),
    /// Built and delivered, but the rollout did not end with a pod of it
    /// ready.
    #[error("{0}")]
    Rollout(#[source] RolloutError),
}

/// The file among the changes that needs `spec`'s image built again, and
/// the build from `bundle`; `None` when the dproc runs no built image or
/// the changes do not touch it.
pub fn wanted(spec: &Spec, root: &Path, bundle: &Bundle, diff: &Diff) -> Option<(String, Rebuild)> {
    let rebuild = spec.build.as_ref()?;
    let changed = diff.changed.iter().chain(&diff.deleted).map(String::as_str);
    let because = needed_by(&rebuild.build, root, &bundle.files, changed)?;
    let mut new = rebuild.clone();
    new.build.tag = new.build.tag_for(&spec.program.name, bundle);
    Some((because.to_string(), new))
}

/// The first of `changed` (names inside the program's directory `root`,
/// whose files are `files`) that needs the image of `build` built again.
pub fn needed_by<'a, V>(
    build: &Build,
    root: &Path,
    files: &BTreeMap<String, V>,
    changed: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // A Dockerfile that cannot be read now (deleted) names no sources; its
    // own change asks for the build, which then says what is wrong.
    let text = std::fs::read_to_string(root.join(&build.dockerfile)).unwrap_or_default();
    dockerfile::rebuild_for(&build.dockerfile, &text, files, changed)
}

/// `spec` running the image of `rebuild`, by the name its pods use (in
/// the registry, where there is one): the program's container, and the
/// unpack step where it ran in the program's image (no `UNPACK_IMAGE`).
pub fn retagged(mut spec: Spec, rebuild: Rebuild) -> Spec {
    let tag = &rebuild.build.tag;
    // The registry was read when the dproc was launched; were it not,
    // the delivery says so before anything is rolled out.
    let image = delivery::reference(tag, rebuild.registry.as_deref()).unwrap_or(tag.clone());
    if spec.unpack_image == spec.program.image {
        spec.unpack_image = image.clone();
    }
    spec.program.image = image;
    spec.build = Some(rebuild);
    spec
}

/// Builds the image of `rebuild` from `bundle` and delivers it as the
/// launch did, then rolls the new bundle and image out as `spec` (already
/// [`retagged`]) says; the build's start and the delivery are said
/// through `printer`.
pub async fn rebuild(
    client: &kube::Client,
    spec: &Spec,
    rebuild: &Rebuild,
    bundle: &Bundle,
    printer: &Printer,
) -> Result<Built, RebuildError> {
    let name = spec.name.clone();
    let printer = Arc::clone(printer);
    let said: Printer = Arc::new(move |line: String| printer(format!("↻ {name}  {line}")));
    let build = &rebuild.build;
    let built = image::build(
        spec.program.shown(),
        build,
        bundle,
        Progress::Printed(Arc::clone(&said)),
    )
    .await
    .map_err(RebuildError::Build)?;
    let delivered = delivery::deliver(
        client,
        &rebuild.server,
        &rebuild.cluster,
        &build.tag,
        rebuild.registry.as_deref(),
        false,
    )
    .await
    .map_err(RebuildError::Delivery)?;
    if let Some(line) = delivered.said(&build.tag) {
        said(line);
    }
    rollout::roll_out(client, spec, bundle)
        .await
        .map_err(RebuildError::Rollout)?;
    Ok(built)
}
