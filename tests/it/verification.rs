//! Verification by code: the code sent at registration marks the address verified;
//! unknown addresses look like known ones; a code works once, also when raced.

use identa::ErrorKind;
use identa::courier::TemplateKind;
use identa::flow::verification::VerificationStep;
use identa::flow::{CodeSubmission, FlowRequest, FlowState};

use crate::common::race::{ROUNDS, refused_as_completed, released_together};
use crate::common::{
    TestEnv, api_verification_flow, code_sent_to, form_message_ids, invalid_flow, mail_to,
    register, submit_verification, verification_flow_of,
};
use crate::{on_every_backend, on_pooled_backends};

async fn verification_marks_the_address_verified(env: TestEnv) {
    let reg = register(&env, "vera@example.com").await;
    let flow_id = verification_flow_of(&reg.continue_with);
    let code = code_sent_to(
        &env,
        "vera@example.com",
        TemplateKind::VerificationCodeValid,
    )
    .await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let shown = invalid_flow(
        submit_verification(&env, flow_id, CodeSubmission::Code(wrong.into()))
            .await
            .unwrap_err(),
    );
    assert_eq!(form_message_ids(&shown), vec![4_070_006]);
    let step = submit_verification(&env, flow_id, CodeSubmission::Code(code))
        .await
        .unwrap();
    let VerificationStep::Verified { flow, identity } = step else {
        panic!("expected Verified")
    };
    assert_eq!(flow.state, FlowState::PassedChallenge);
    assert_eq!(form_message_ids(&flow), vec![1_080_002]);
    let address = &identity.verifiable_addresses[0];
    assert!(address.verified);
    assert_eq!(address.status.as_str(), "completed");
    assert_eq!(address.verified_at, Some(env.clock_now()));
    let stored = env.identa.identity(identity.id).await.unwrap();
    assert!(stored.verifiable_addresses[0].verified);

    // A verification flow started by the user: unknown addresses look like known ones.
    let start = api_verification_flow(&env).await;
    let ask = CodeSubmission::Email("ghost@example.com".into());
    let step = submit_verification(&env, start.id, ask).await.unwrap();
    let VerificationStep::CodeSent(flow) = step else {
        panic!("expected CodeSent")
    };
    assert_eq!(form_message_ids(&flow), vec![1_080_003]);
    assert!(mail_to(&env, "ghost@example.com").await.is_empty());
    // A code in choose_method is a typed state error.
    let fresh = api_verification_flow(&env).await;
    let err = submit_verification(&env, fresh.id, CodeSubmission::Code("123456".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FlowState);
}

on_every_backend!(verification_marks_the_address_verified,);

/// One verification code, submitted by `TASKS` tasks at once, is accepted exactly once;
/// the others are refused as a replay: the flow was completed before they read it
/// ("already completed", 4070002), or while they were judged, so the version check refused
/// their write. Each round is a new account, with the code registration sent.
async fn verification_code_is_accepted_once_under_a_race(env: TestEnv) {
    let req = FlowRequest::api();
    for round in 0..ROUNDS {
        let address = format!("race{round}@example.com");
        let flow_id = verification_flow_of(&register(&env, &address).await.continue_with);
        let code = code_sent_to(&env, &address, TemplateKind::VerificationCodeValid).await;
        let results = released_together(|_| {
            let (identa, req, code) = (env.identa.clone(), req.clone(), code.clone());
            async move {
                identa
                    .verification_flow()
                    .submit(flow_id, CodeSubmission::Code(code), &req)
                    .await
            }
        })
        .await;
        let verified = results
            .iter()
            .filter(|r| matches!(r, Ok(VerificationStep::Verified { .. })))
            .count();
        assert_eq!(verified, 1, "round {round}: {results:#?}");
        for result in results.iter().filter(|r| r.is_err()) {
            let replay = refused_as_completed(result, 4_070_002);
            assert!(replay, "round {round}: {result:#?}");
        }
    }
}

on_pooled_backends!(verification_code_is_accepted_once_under_a_race);
