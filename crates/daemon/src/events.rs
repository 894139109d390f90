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
