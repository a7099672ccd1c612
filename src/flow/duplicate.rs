//! Enumeration-safe registration ([`DuplicateRegistration::AnswerAsNew`]): a sign-up
//! with an address that already has an account is answered as a new one, creates
//! nothing, and mails the address's owner instead of sending a verification code.
//!
//! ```text
//! submit ─ traits valid, password hashed (the same work as a new sign-up) ─┬─ nothing taken ─▶ new identity
//!                                                                          └─ only addresses taken ─▶ answer_as_new
//! commit ─ an address was taken meanwhile (a racing sign-up) ─▶ answer_if_taken again (the engine)
//! ```
//!
//! The answer has what a new registration without a session has: the flow passed, the
//! drafted identity (a fresh random id, the submitted traits), and a real verification
//! flow per address in `continue_with`, in `sent_email` like a new one, whose code goes to
//! no one. The only mail is [`TemplateKind::RegistrationAttempted`] to each taken address.

use super::code::{Purpose, send_code};
use super::lifecycle::new_flow;
use super::registration::{Made, Outcome};
use super::{AfterRegistration, ContinueFlow, ContinueWith, DuplicateRegistration, Effect, Facts};
use super::{Fallback, Flow, FlowKind, FlowRequest, FlowState, FlowsConfig, Result, Transition};
use crate::courier::{TemplateKind, TemplateVars};
use crate::identity::{AddressVia, Identity};
use crate::store::AddressKind;

/// Why a configuration cannot answer duplicates as new ones, if it cannot: checked when
/// the engine is built.
pub(crate) fn check_config(config: &FlowsConfig) -> std::result::Result<(), String> {
    if config.registration.duplicate != DuplicateRegistration::AnswerAsNew {
        return Ok(());
    }
    if config.registration.after != AfterRegistration::AccountOnly {
        return Err(
            "registration.duplicate = AnswerAsNew needs registration.after = \
                    AfterRegistration::AccountOnly: a session issued to new accounts only \
                    would tell which addresses are taken"
                .into(),
        );
    }
    if !config.verification.enabled {
        return Err(
            "registration.duplicate = AnswerAsNew needs verification.enabled: \
                    without a verification mail to new addresses, the mail a new user \
                    expects and does not get would tell which addresses are taken"
                .into(),
        );
    }
    Ok(())
}

/// When registration is enumeration-safe and `identity` (drafted from a submission to
/// `flow`, not yet stored) clashes only on email addresses it would have to verify, the
/// transition that answers as new: `None` when nothing is taken, when a clash could not
/// be hidden (a username, a phone number), or when duplicates are refused.
pub(crate) async fn answer_if_taken(
    facts: &dyn Facts,
    flow: &Flow,
    identity: &Identity,
    req: &FlowRequest,
) -> Result<Option<Transition<Outcome>>> {
    if facts.config().registration.duplicate != DuplicateRegistration::AnswerAsNew {
        return Ok(None);
    }
    let taken = match taken_addresses(facts, identity).await? {
        Some(taken) if !taken.is_empty() => taken,
        _ => return Ok(None),
    };
    answer_as_new(facts, flow.clone(), identity.clone(), &taken, req).map(Some)
}

/// The email addresses of `identity` that another account already has, or `None` if
/// something else is taken (which a new user could tell without any mailbox).
async fn taken_addresses(facts: &dyn Facts, identity: &Identity) -> Result<Option<Vec<String>>> {
    let mailboxes: Vec<&str> = identity
        .verifiable_addresses
        .iter()
        .filter(|a| a.via == AddressVia::Email)
        .map(|a| a.value.as_str())
        .collect();
    let mut taken: Vec<String> = Vec::new();
    let mut note = |value: &str| -> bool {
        match mailboxes.iter().find(|m| **m == value) {
            Some(mailbox) => {
                if !taken.iter().any(|t| t == mailbox) {
                    taken.push((*mailbox).to_owned());
                }
                true
            }
            None => false,
        }
    };
    for (credential_type, credential) in &identity.credentials {
        for identifier in &credential.identifiers {
            let owner = facts
                .identity_by_identifier(*credential_type, identifier)
                .await?;
            if owner.is_some() && !note(identifier) {
                return Ok(None);
            }
        }
    }
    for address in &identity.verifiable_addresses {
        let owner = facts
            .identity_by_address(AddressKind::Verifiable, address.via, &address.value)
            .await?;
        if owner.is_some() && !note(&address.value) {
            return Ok(None);
        }
    }
    for address in &identity.recovery_addresses {
        let owner = facts
            .identity_by_address(AddressKind::Recovery, address.via, &address.value)
            .await?;
        if owner.is_some() && !note(&address.value) {
            return Ok(None);
        }
    }
    Ok(Some(taken))
}

/// The transition that answers a registration of `identity` as new while creating
/// nothing: `flow` passed, a verification flow per unverified email address as a new
/// registration makes (its code reaches no one, nothing is sent for it), and the notice
/// to each `taken` address.
fn answer_as_new(
    facts: &dyn Facts,
    mut flow: Flow,
    identity: Identity,
    taken: &[String],
    req: &FlowRequest,
) -> Result<Transition<Outcome>> {
    let fallback = Fallback::to(flow.clone());
    let mut effects = Vec::new();
    let mut continue_with = Vec::new();
    let config = &facts.config().verification;
    // As `code::verify_new_addresses` does for a new identity; `check_config` made sure
    // verification is on.
    for address in &identity.verifiable_addresses {
        if address.verified || address.via != AddressVia::Email || !config.enabled {
            continue;
        }
        let mut verification = new_flow(
            facts,
            FlowKind::Verification,
            flow.flow_type,
            req,
            config.lifespan,
            FlowState::ChooseMethod,
        )?;
        verification.identity_id = Some(identity.id);
        // A code for no one: the flow reads as a new one's, no code will ever match, and
        // its mail (an "unknown address" notice, if configured) is not sent.
        let _not_sent = send_code(
            facts,
            &mut verification,
            Purpose::Verification,
            &address.value,
            None,
        );
        continue_with.push(ContinueWith::ShowVerificationUi {
            flow: ContinueFlow {
                id: verification.id,
                url: None,
                verifiable_address: Some(address.value.clone()),
            },
        });
        effects.push(Effect::InsertFlow(verification));
    }
    for to in taken {
        effects.push(Effect::SendMail {
            template: TemplateKind::RegistrationAttempted,
            vars: TemplateVars {
                to: to.clone(),
                code: None,
                expires_in_minutes: 0,
                code_expires_at: None,
            },
        });
    }
    flow.state = FlowState::PassedChallenge;
    flow.internal.clear_ceremonies();
    flow.continue_with = continue_with.clone();
    Ok(Transition {
        flow,
        effects,
        outcome: Outcome {
            identity,
            login: None,
            continue_with,
            made: Made::AnsweredAsNew,
        },
        fallback,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::credential::password::Password;
    use crate::flow::registration::{RegistrationSubmission, create, submit};
    use crate::flow::testing::{PASSWORD, TestFacts, advanced, api, effect_names};
    use crate::flow::{Answers, FlowType, Step};

    fn enumeration_safe() -> TestFacts {
        let mut facts = TestFacts::new();
        facts.config.registration.duplicate = DuplicateRegistration::AnswerAsNew;
        facts.config.registration.after = AfterRegistration::AccountOnly;
        facts
    }

    async fn sign_up(facts: &TestFacts, email: &str) -> Step<Outcome> {
        let flow = create(facts, FlowType::Api, &api(), None).unwrap();
        let submission = RegistrationSubmission::Password {
            traits: json!({ "email": email }),
            password: Password::new(PASSWORD),
        };
        submit(facts, flow, submission, &api(), None).await.unwrap()
    }

    #[tokio::test]
    async fn a_taken_address_is_answered_as_new_and_its_owner_told() {
        let facts = enumeration_safe();
        let owner = facts.add_identity("ada@example.com").await;
        let hashed_before = facts.hashes();

        let fresh = advanced(sign_up(&facts, "bob@example.com").await);
        let hashed_for_new = facts.hashes() - hashed_before;
        let taken = advanced(sign_up(&facts, "ADA@example.com").await);
        let hashed_for_taken = facts.hashes() - hashed_before - hashed_for_new;

        // The same work: the submitted password is hashed either way.
        assert_eq!((hashed_for_new, hashed_for_taken), (1, 1));
        assert_eq!(fresh.outcome.made, Made::Created);
        assert_eq!(taken.outcome.made, Made::AnsweredAsNew);
        assert_eq!(taken.flow.state, FlowState::PassedChallenge);
        assert!(taken.outcome.login.is_none() && fresh.outcome.login.is_none());
        // A fresh identity with the traits as submitted, never the owner's.
        assert_ne!(taken.outcome.identity.id, owner.id);
        assert_eq!(taken.outcome.identity.traits["email"], "ADA@example.com");
        // Nothing is created; a verification flow like a new one's; one notice.
        assert_eq!(
            effect_names(&fresh.effects),
            ["insert_identity", "insert_flow", "send_mail"]
        );
        assert_eq!(effect_names(&taken.effects), ["insert_flow", "send_mail"]);
        assert!(matches!(
            &taken.effects[1],
            Effect::SendMail { template: TemplateKind::RegistrationAttempted, vars }
                if vars.to == "ada@example.com" && vars.code.is_none()
        ));
        let Effect::InsertFlow(verification) = &taken.effects[0] else {
            unreachable!()
        };
        assert_eq!(verification.state, FlowState::SentEmail);
        assert!(matches!(
            &taken.outcome.continue_with[..],
            [ContinueWith::ShowVerificationUi { flow }]
                if flow.id == verification.id
                    && flow.verifiable_address.as_deref() == Some("ada@example.com")
        ));
        assert!(taken.outcome.after_event(taken.flow.id).is_none());
        assert!(fresh.outcome.after_event(fresh.flow.id).is_some());
    }

    #[tokio::test]
    async fn duplicates_are_refused_unless_configured() {
        let facts = TestFacts::new();
        facts.add_identity("ada@example.com").await;
        // The default: the flow goes on to the commit, whose unique index refuses it.
        let step = advanced(sign_up(&facts, "ada@example.com").await);
        assert_eq!(step.outcome.made, Made::Created);
    }

    #[test]
    fn answering_as_new_needs_no_session_and_verification_on() {
        let mut config = FlowsConfig::default();
        config.registration.duplicate = DuplicateRegistration::AnswerAsNew;
        let err = check_config(&config).unwrap_err();
        assert!(err.contains("AccountOnly"), "{err}");
        config.registration.after = AfterRegistration::AccountOnly;
        assert_eq!(check_config(&config), Ok(()));
        config.verification.enabled = false;
        let err = check_config(&config).unwrap_err();
        assert!(err.contains("verification.enabled"), "{err}");
        assert_eq!(check_config(&FlowsConfig::default()), Ok(()));
    }
}
