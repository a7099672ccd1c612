//! Verification by code: the code sent at registration marks the address verified;
//! unknown addresses look like known ones.

use identa::ErrorKind;
use identa::courier::TemplateKind;
use identa::flow::verification::{VerificationStep, VerificationSubmission};
use identa::flow::{ContinueWith, FlowRequest, FlowState, FlowType};

use crate::common::{
    TestEnv, code_sent_to, form_message_ids, invalid_flow, mail_to, node_message_ids, register,
};
use crate::on_every_backend;

async fn verification_marks_the_address_verified(env: TestEnv) {
    let reg = register(&env, "vera@example.com").await;
    let flow_id = reg
        .continue_with
        .iter()
        .find_map(|c| match c {
            ContinueWith::ShowVerificationUi { flow } => Some(flow.id),
            _ => None,
        })
        .unwrap();
    let code = code_sent_to(
        &env,
        "vera@example.com",
        TemplateKind::VerificationCodeValid,
    )
    .await;
    let req = FlowRequest::api();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let shown = invalid_flow(
        env.identa
            .verification_flow()
            .submit(flow_id, VerificationSubmission::Code(wrong.into()), &req)
            .await
            .unwrap_err(),
    );
    assert_eq!(node_message_ids(&shown, "code"), vec![4_070_006]);
    let step = env
        .identa
        .verification_flow()
        .submit(flow_id, VerificationSubmission::Code(code), &req)
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
    let start = env
        .identa
        .verification_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    let step = env
        .identa
        .verification_flow()
        .submit(
            start.id,
            VerificationSubmission::Email("ghost@example.com".into()),
            &req,
        )
        .await
        .unwrap();
    let VerificationStep::CodeSent(flow) = step else {
        panic!("expected CodeSent")
    };
    assert_eq!(form_message_ids(&flow), vec![1_080_003]);
    assert!(mail_to(&env, "ghost@example.com").await.is_empty());
    // A code in choose_method is a typed state error.
    let fresh = env
        .identa
        .verification_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    let err = env
        .identa
        .verification_flow()
        .submit(
            fresh.id,
            VerificationSubmission::Code("123456".into()),
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FlowState);
}

on_every_backend!(verification_marks_the_address_verified,);
