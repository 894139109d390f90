//! The event bus behind `GET /events`: a broadcast for live listeners and a bounded
//! history for `since` replays.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use berth_api::models::{EventActor, EventMessage, EventMessageTypeEnum};
use tokio::sync::broadcast;

const HISTORY: usize = 1024;

pub struct Events {
    tx: broadcast::Sender<EventMessage>,
    history: Mutex<VecDeque<EventMessage>>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Events {
        let (tx, _) = broadcast::channel(256);
        Events { tx, history: Mutex::new(VecDeque::with_capacity(HISTORY)) }
    }

    /// Publish an event.
    pub fn emit(&self, kind: EventMessageTypeEnum, action: &str, id: &str, attrs: HashMap<String, String>) {
        let now = chrono::Utc::now();
        let ev = EventMessage {
            typ: Some(kind),
            action: Some(action.to_owned()),
            actor: Some(EventActor { id: Some(id.to_owned()), attributes: Some(attrs) }),
            scope: Some(berth_api::models::EventMessageScopeEnum::LOCAL),
            time: Some(now.timestamp()),
            time_nano: Some(now.timestamp_nanos_opt().unwrap_or(0)),
        };
        {
            let mut h = self.history.lock().unwrap();
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// An event as dockerd 20.10 sends it: a container's and an image's also with the
    /// fields API 1.21 clients read (`status`, the action; `id`; a container's `from`,
    /// its image), which docker-compose 1.29 and docker-py's users still do.
    pub fn wire(e: &EventMessage) -> serde_json::Value {
        let mut v = serde_json::to_value(e).unwrap_or_default();
        let legacy = matches!(e.typ, Some(EventMessageTypeEnum::CONTAINER) | Some(EventMessageTypeEnum::IMAGE));
        if let (true, Some(o)) = (legacy, v.as_object_mut()) {
            let actor = e.actor.as_ref();
            let nonempty = |s: Option<&String>| s.filter(|s| !s.is_empty()).cloned();
            if let Some(a) = nonempty(e.action.as_ref()) {
                o.insert("status".into(), a.into());
            }
            if let Some(id) = nonempty(actor.and_then(|a| a.id.as_ref())) {
                o.insert("id".into(), id.into());
            }
            let image = actor.and_then(|a| a.attributes.as_ref()).and_then(|m| m.get("image"));
            if let Some(from) = nonempty(image).filter(|_| e.typ == Some(EventMessageTypeEnum::CONTAINER)) {
                o.insert("from".into(), from.into());
            }
        }
        v
    }

    /// Past events at or after `since` (unix seconds), and a live receiver.
    pub fn subscribe(&self, since: Option<i64>) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        let h = self.history.lock().unwrap();
        let rx = self.tx.subscribe();
        let past = match since {
            Some(s) => h.iter().filter(|e| e.time.unwrap_or(0) >= s).cloned().collect(),
            None => Vec::new(),
        };
        (past, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_and_image_events_carry_the_legacy_fields() {
        let ev = |kind, attrs: &[(&str, &str)]| EventMessage {
            typ: Some(kind),
            action: Some("start".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            }),
            ..Default::default()
        };
        let c = Events::wire(&ev(EventMessageTypeEnum::CONTAINER, &[("image", "busybox"), ("name", "x")]));
        assert_eq!((&c["status"], &c["id"], &c["from"], &c["Action"]), (&"start".into(), &"abc".into(), &"busybox".into(), &"start".into()));
        let i = Events::wire(&ev(EventMessageTypeEnum::IMAGE, &[("name", "busybox")]));
        assert_eq!((&i["status"], &i["id"]), (&"start".into(), &"abc".into()));
        assert!(i.get("from").is_none());
        let n = Events::wire(&ev(EventMessageTypeEnum::NETWORK, &[("name", "n")]));
        assert!(n.get("status").is_none() && n.get("id").is_none());
    }
}
