//! Reading the outbox: the messages to an address, and the code one of them carries.

use identa::courier::{Message, TemplateKind};
use identa::store::PageRequest;

use super::TestEnv;

/// All outbox messages to `to`, newest first.
pub async fn mail_to(env: &TestEnv, to: &str) -> Vec<Message> {
    env.identa
        .courier()
        .messages(None, PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|m| m.email.to == to)
        .collect()
}

/// The first run of exactly six digits in `text` (how identa's mails carry a code).
pub fn six_digit_code(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no 6-digit code in {text:?}"))
        .to_owned()
}

/// The code in the newest message of `kind` to `to` (in its text and its HTML part).
pub async fn code_sent_to(env: &TestEnv, to: &str, kind: TemplateKind) -> String {
    let mail = mail_to(env, to).await;
    let message = mail
        .iter()
        .find(|m| m.template == kind)
        .unwrap_or_else(|| panic!("no {kind} message to {to}"));
    let code = six_digit_code(&message.email.text);
    assert!(message.email.html.contains(&code));
    code
}
