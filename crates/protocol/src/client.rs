//! The client gateway, `/api/v1/ws`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a subscription is for. Exactly one of the four.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<uuid::Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Alert events (firing, resolved), pushed as `{"type":"alert","event":…}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<bool>,
}

/// Client → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message when no `?ticket=` was given: an access token or API key.
    Auth { token: String },
    /// Follow a task (`since`: resume after this sequence number), an agent, or all tasks
    /// you may see (`since`: resume after this time, in Unix milliseconds).
    Subscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<uuid::Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        all: Option<bool>,
        /// Alert events (needs permission to read the system's state).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alerts: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    Unsubscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<uuid::Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        all: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alerts: Option<bool>,
    },
    /// Submit a task; answered by `ack` with the same `ref`, then the task's events.
    Submit {
        #[serde(rename = "ref")]
        reference: String,
        agent: String,
        #[serde(default)]
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
        /// The task's flow key (see the REST submission's `concurrency_key`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        concurrency_key: Option<String>,
    },
    /// Cancel a task; answered by `ack` with the task if a `ref` is given.
    Cancel {
        task_id: uuid::Uuid,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// Application-level ping; answered by `pong`.
    Ping {},
}

/// Server → client. Task events are sent as `{"type":"event", …}` (see the crate docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Authentication succeeded.
    Authenticated {
        user_id: uuid::Uuid,
        role: String,
    },
    Subscribed {
        #[serde(flatten)]
        target: Target,
    },
    Unsubscribed {
        #[serde(flatten)]
        target: Target,
    },
    /// The answer to a `submit` (or a `cancel` with a `ref`): the task as stored.
    Ack {
        #[serde(rename = "ref")]
        reference: String,
        task: Value,
    },
    Error {
        code: String,
        message: String,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    Pong {},
    /// An alert rule started or stopped firing (to `alerts` subscribers); `event` is an
    /// alert event as `GET /api/v1/alerts/events` lists them.
    Alert {
        event: Value,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contract_shapes() {
        let m: ClientMessage =
            serde_json::from_value(json!({"type": "subscribe", "all": true, "since": 5})).unwrap();
        assert_eq!(
            m,
            ClientMessage::Subscribe {
                task_id: None,
                agent: None,
                all: Some(true),
                alerts: None,
                since: Some(5)
            }
        );
        let m: ClientMessage = serde_json::from_value(
            json!({"type": "submit", "ref": "c1", "agent": "echo", "input": {"a": 1}}),
        )
        .unwrap();
        assert!(matches!(m, ClientMessage::Submit { ref reference, .. } if reference == "c1"));
        let ack = ServerMessage::Ack {
            reference: "c1".into(),
            task: json!({"id": "x"}),
        };
        assert_eq!(
            serde_json::to_value(ack).unwrap(),
            json!({"type": "ack", "ref": "c1", "task": {"id": "x"}})
        );
        let err = ServerMessage::Error {
            code: "bad".into(),
            message: "m".into(),
            reference: None,
        };
        assert_eq!(
            serde_json::to_value(err).unwrap(),
            json!({"type": "error", "code": "bad", "message": "m"})
        );
        assert!(serde_json::from_value::<ClientMessage>(json!({"type": "teleport"})).is_err());
    }
}
