//! The last warnings and errors the server logged, for the admin console's "recent errors".
//!
//! A `tracing` layer copies every WARN and ERROR event into a small ring buffer in memory. The binary adds
//! [`layer`] to its subscriber; a server embedded without it simply shows none. The buffer is global (one per
//! process, like the log itself).

use std::{collections::VecDeque, fmt::Write as _, sync::Mutex};
use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{Layer, layer::Context};

/// How many events are kept.
pub const CAPACITY: usize = 100;
/// Longest text kept per event.
const MAX_TEXT: usize = 2000;

/// One logged warning or error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEvent {
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    /// `WARN` or `ERROR`.
    pub level: &'static str,
    /// The module that logged it.
    pub target: String,
    /// The message, then the event's other fields as `key=value`.
    pub text: String,
}

static RECENT: Mutex<VecDeque<RecentEvent>> = Mutex::new(VecDeque::new());

/// The kept events, oldest first.
pub fn events() -> Vec<RecentEvent> {
    RECENT.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
}

fn push(event: RecentEvent) {
    let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    if recent.len() >= CAPACITY {
        recent.pop_front();
    }
    recent.push_back(event);
}

/// The layer to add to the process's subscriber.
pub fn layer() -> RecentLayer {
    RecentLayer
}

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct RecentLayer;

impl<S: Subscriber> Layer<S> for RecentLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::WARN {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let mut line = text.message;
        if !text.fields.is_empty() {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&text.fields);
        }
        if line.len() > MAX_TEXT {
            let mut cut = MAX_TEXT;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        push(RecentEvent {
            time: crate::service::now_ms(),
            level: if level == Level::ERROR { "ERROR" } else { "WARN" },
            target: event.metadata().target().to_string(),
            text: line,
        });
    }
}

#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl tracing::field::Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, "{}{}={}", if self.fields.is_empty() { "" } else { " " }, field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let sep = if self.fields.is_empty() { "" } else { " " };
            let _ = write!(self.fields, "{sep}{}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn keeps_warnings_and_errors_with_their_fields() {
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not kept");
            tracing::warn!(user = "alice", n = 3, "first {}", "warning");
            tracing::error!(error = %"disk full", "write failed");
        });
        let kept: Vec<_> = events().into_iter().filter(|e| e.target.ends_with("recent::tests")).collect();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!((kept[0].level, kept[0].text.as_str()), ("WARN", "first warning user=alice n=3"));
        assert_eq!((kept[1].level, kept[1].text.as_str()), ("ERROR", "write failed error=disk full"));
    }
}
