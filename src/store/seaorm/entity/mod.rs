//! sea-orm entities: one per table, plain rows. Conversion to the domain model lives
//! in the parent module; nothing here knows about rules.

pub mod courier_message;
pub mod credential;
pub mod credential_identifier;
pub mod flow;
pub mod identity;
pub mod known_pair;
pub mod password_history;
pub mod recovery_address;
pub mod self_service_error;
pub mod session;
pub mod session_event;
pub mod spent_code;
pub mod throttle_counter;
pub mod verifiable_address;
