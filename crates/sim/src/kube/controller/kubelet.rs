//! The kubelet model: a pod bound to a node turns Running after a seeded image pull and container
//! start, then Ready after a seeded readiness delay (all platform time).

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::super::resources::PODS;
use super::super::store::{Store, name_of};
use super::{Controller, draw, fnv};
use firedrill_core::clock::PlatformTime;
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The containers run.
    Running,
    /// The readiness probe passes.
    Ready,
}

impl Controller {
    pub(super) fn fire_timers(&mut self, store: &mut Store, now: PlatformTime) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, uid), stage) = entry.remove_entry();
            let Some(record) = self.records.get(&uid) else {
                continue;
            };
            if record.deleted.is_some() {
                continue;
            }
            let (ns, name) = (record.namespace.clone(), record.name.clone());
            let stamp = store.now_rfc3339();
            let result = store.modify(PODS, &ns, &name, |pod| {
                set_pod_state(pod, stage, &stamp);
                Ok(())
            });
            if result.is_err() {
                continue;
            }
            let Some(record) = self.records.get_mut(&uid) else {
                continue;
            };
            match stage {
                Stage::Running => {
                    record.running = Some(now);
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(self.seed ^ fnv(name.as_bytes()) ^ 0x5eed);
                    let delay = if self.warm {
                        Duration::ZERO
                    } else {
                        draw(&mut rng, self.timing.readiness)
                    };
                    record.ready_delay = Some(delay);
                    self.timers.insert((now.plus(delay), uid), Stage::Ready);
                }
                Stage::Ready => record.ready = Some(now),
            }
        }
    }

    /// The kubelet model: draws the seeded start delay and arms the Running timer.
    pub(super) fn start(
        &mut self,
        pod: &Value,
        node: String,
        zone: Option<String>,
        now: PlatformTime,
    ) {
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !self.records.contains_key(&uid) {
            self.track(pod, None, now);
        }
        let name = name_of(pod).to_owned();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ fnv(name.as_bytes()));
        let delay = if self.warm {
            Duration::ZERO
        } else {
            draw(&mut rng, self.timing.image_pull) + draw(&mut rng, self.timing.container_start)
        };
        if let Some(r) = self.records.get_mut(&uid) {
            r.node = Some(node);
            r.zone = zone;
            r.scheduled = Some(now);
            r.start_delay = Some(delay);
        }
        self.timers.insert((now.plus(delay), uid), Stage::Running);
    }
}

/// The kubelet's view of a pod after the Running or Ready transition.
fn set_pod_state(pod: &mut Value, stage: Stage, stamp: &str) {
    let ready = stage == Stage::Ready;
    pod["status"]["phase"] = json!("Running");
    for c in pod["status"]["conditions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let flip = match c["type"].as_str() {
            Some("PodReadyToStartContainers") => true,
            Some("Ready" | "ContainersReady") => ready,
            _ => false,
        };
        if flip && c["status"] != "True" {
            c["status"] = json!("True");
            c["lastTransitionTime"] = json!(stamp);
            if let Some(o) = c.as_object_mut() {
                o.remove("reason");
                o.remove("message");
            }
        }
    }
    for cs in pod["status"]["containerStatuses"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if stage == Stage::Running {
            cs["state"] = json!({"running": {"startedAt": stamp}});
            cs["started"] = json!(true);
            cs["containerID"] = json!(format!("containerd://{}", fnv(stamp.as_bytes())));
        }
        cs["ready"] = json!(ready);
    }
}
