//! Reading what a flow shows: node values, the message ids on a node or the form, and the
//! flow a refused submission returns.

use identa::Error;
use identa::flow::Flow;
use serde_json::Value;

/// The value of the node named `name`, if it has one.
pub fn node_value<'a>(flow: &'a Flow, name: &str) -> Option<&'a Value> {
    flow.ui.node(name).and_then(|n| n.value())
}

/// The string value of the node named `name`; panics if there is none.
pub fn node_str(flow: &Flow, name: &str) -> String {
    node_value(flow, name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("the flow has no `{name}` value"))
        .to_owned()
}

/// The message ids on the node named `name`.
pub fn node_message_ids(flow: &Flow, name: &str) -> Vec<u32> {
    flow.ui
        .node(name)
        .map(|n| n.messages.iter().map(|m| m.id).collect())
        .unwrap_or_default()
}

/// The message ids on the form itself (`ui.messages`).
pub fn form_message_ids(flow: &Flow) -> Vec<u32> {
    flow.ui.messages.iter().map(|m| m.id).collect()
}

/// Every message id the flow shows: the form's, then each node's.
pub fn all_message_ids(flow: &Flow) -> Vec<u32> {
    flow.ui
        .messages
        .iter()
        .chain(flow.ui.nodes.iter().flat_map(|n| n.messages.iter()))
        .map(|m| m.id)
        .collect()
}

/// The flow of a submission refused with messages to show (`Error::FlowInvalid`).
pub fn invalid_flow(err: Error) -> Flow {
    match err {
        Error::Flow(identa::flow::FlowError::Invalid(flow)) => *flow,
        other => panic!("expected a flow with validation messages, got {other:?}"),
    }
}
