//! Sessions outside any flow: signing in with an identifier and password, `whoami` (with
//! the cache), logout (by token, or by a browser's logout token bound to its session),
//! extension, listing and revocation, and the housekeeping a host runs now and then.

use std::sync::Arc;

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::Duration;
use uuid::Uuid;

use super::Identa;
use super::cache::{CachedSession, SyncNeed};
use crate::config::RequiredAal;
use crate::error::{Error, Result};
use crate::flow::{Effect, FlowError, login};
use crate::identity::{Aal, CredentialType, Identity};
use crate::secret::MacPurpose;
use crate::session::{
    AuthenticatedSession, AuthenticationMethod, Device, Login, Session, SessionError,
    SessionRefusal, SessionToken, TokenCheck,
};
use crate::store::{Commit, Page, PageRequest, SessionEvent, Write};
use crate::throttle::policy::{Attempt, Verdict};

/// How many session events one cache synchronisation reads before giving up and
/// starting the cache over.
const EVENT_READ_LIMIT: u64 = 1000;

impl Identa {
    /// Signs in with an identifier and a password and issues a session (an outdated
    /// password hash is re-hashed in the same transaction).
    ///
    /// A wrong password and an unknown identifier fail alike (kind
    /// [`InvalidCredentials`](crate::ErrorKind::InvalidCredentials)) and take the same
    /// time: an unknown identifier is verified against a dummy hash.
    pub async fn login(
        &self,
        identifier: &str,
        password: &Password,
        device: Option<Device>,
    ) -> Result<Login> {
        let ip = device.as_ref().and_then(|d| d.ip_address.as_deref());
        let standing = self.standing(identifier, ip).await?;
        let attempt = Attempt::Password {
            identifier,
            ip,
            standing,
        };
        let remember = self.remember_pair(&attempt);
        let ticket = self.admit(attempt).await?;
        let checked = match login::check_password(self, identifier, password, standing.lane()).await
        {
            Ok(checked) => checked,
            Err(err) => {
                let verdict = match err {
                    FlowError::InvalidCredentials => Verdict::Failed,
                    _ => Verdict::NotJudged,
                };
                self.settle(ticket, verdict).await;
                return Err(err.into());
            }
        };
        self.settle(ticket, Verdict::Succeeded).await;
        let now = self.now();
        let method = AuthenticationMethod {
            method: CredentialType::Password.as_str().to_owned(),
            aal: Aal::Aal1,
            completed_at: now,
        };
        let (session, token) = Session::issue(
            &checked.identity,
            vec![method],
            device,
            now,
            self.inner.config.session.lifespan,
            self.keyring(),
        )?;
        let mut writes = Vec::new();
        if let Some(rehashed) = &checked.rehashed {
            writes.push(Write::ReplaceIdentity(rehashed));
        }
        writes.push(Write::InsertSession(&session, token.hash()));
        if let Some(Effect::RememberPair { key, until }) = remember {
            writes.push(Write::RememberPair { key, until });
        }
        self.inner.store.commit(&Commit { writes }, None).await?;
        if checked.rehashed.is_some() {
            self.invalidate(SessionEvent::Identity(checked.identity.id));
        }
        let identity = checked.rehashed.unwrap_or(checked.identity);
        Ok(Login {
            session: AuthenticatedSession { session, identity },
            token,
        })
    }

    /// Issues a session for an identity that has just authenticated with `methods`.
    pub async fn issue_session(
        &self,
        identity: &Identity,
        methods: Vec<AuthenticationMethod>,
        device: Option<Device>,
    ) -> Result<(Session, SessionToken)> {
        let (session, token) = Session::issue(
            identity,
            methods,
            device,
            self.now(),
            self.inner.config.session.lifespan,
            self.keyring(),
        )?;
        self.inner
            .store
            .insert_session(&session, &token.hash())
            .await?;
        Ok((session, token))
    }

    /// The session a token belongs to, with its identity. Refuses unknown, revoked and
    /// expired sessions, and sessions of disabled identities; with
    /// `session.whoami_required_aal = HighestAvailable` (the default), also an `aal1`
    /// session of an identity that has a second factor ([`FlowError::Aal2Required`]).
    pub async fn whoami(&self, token: &SessionToken) -> Result<AuthenticatedSession> {
        Ok(self.whoami_shared(token).await?.value.clone())
    }

    /// [`whoami`](Self::whoami) without copying the cache entry: what the HTTP `whoami`
    /// answers from (the entry keeps its rendered JSON).
    pub(crate) async fn whoami_shared(&self, token: &SessionToken) -> Result<Arc<CachedSession>> {
        let current = self.authenticate_shared(token).await?;
        if self.owes_second_factor(&current.value) {
            return Err(FlowError::Aal2Required.into());
        }
        Ok(current)
    }

    /// Whether `whoami` refuses this session for want of the identity's second factor:
    /// `session.whoami_required_aal = HighestAvailable` and the session's level is below
    /// the highest the identity has. The one rule, for `whoami` and for where a browser
    /// goes after signing in with a provider.
    pub(crate) fn owes_second_factor(&self, current: &AuthenticatedSession) -> bool {
        self.inner.config.session.whoami_required_aal == RequiredAal::HighestAvailable
            && current.session.aal < current.identity.highest_available_aal()
    }

    /// [`whoami`](Self::whoami) without the assurance-level rule: what flows use, since a
    /// session that must step up still drives the step-up.
    pub(crate) async fn authenticate(&self, token: &SessionToken) -> Result<AuthenticatedSession> {
        Ok(self.authenticate_shared(token).await?.value.clone())
    }

    /// [`authenticate`](Self::authenticate), sharing the cache entry.
    async fn authenticate_shared(&self, token: &SessionToken) -> Result<Arc<CachedSession>> {
        // A token the server cannot have minted is refused as an unknown one, before any
        // cache or store work: a flood of forged tokens never reaches the database.
        let worth_a_lookup = match token.check(self.keyring()) {
            TokenCheck::Tagged => true,
            TokenCheck::Untagged => self.untagged_tokens_accepted().await?,
            TokenCheck::Forged => false,
        };
        if !worth_a_lookup {
            return Err(SessionError::Inactive(SessionRefusal::Unknown).into());
        }
        let hash = token.hash();
        let cache = &self.inner.cache;
        if let SyncNeed::ReadAfter(cursor) = cache.sync_need(self.now()) {
            let read_at = self.now();
            let log = self
                .inner
                .store
                .session_events_after(&cursor, EVENT_READ_LIMIT)
                .await?;
            cache.apply(&cursor, &log.events, log.cursor, log.complete, read_at);
        }
        let current = match cache.get(&hash, self.now()) {
            Some(hit) => hit,
            None => {
                let generation = cache.generation();
                let read_at = self.now();
                let (session, identity) = self
                    .inner
                    .store
                    .session_by_token(&hash)
                    .await?
                    .ok_or(SessionError::Inactive(SessionRefusal::Unknown))?;
                let found = Arc::new(CachedSession::new(AuthenticatedSession {
                    session,
                    identity,
                }));
                cache.put(hash, &found, generation, read_at);
                found
            }
        };
        // Expiry and state are judged now, on every call, cached or not.
        if let Some(reason) = current
            .value
            .session
            .unusable_reason(&current.value.identity, self.now())
        {
            return Err(SessionError::Inactive(reason).into());
        }
        Ok(current)
    }

    /// Whether a token in the shape minted before tags may still belong to a live session:
    /// until the latest expiry among the sessions that existed when the schema was
    /// upgraded to tagged tokens, read from the store once and remembered.
    async fn untagged_tokens_accepted(&self) -> Result<bool> {
        let store = &self.inner.store;
        let until = self
            .inner
            .untagged_tokens_until
            .get_or_try_init(|| store.untagged_tokens_until())
            .await?;
        Ok(until.is_some_and(|until| self.now() < until))
    }

    /// Ends the session a token belongs to (whatever its assurance level: a session that
    /// has yet to complete its second factor can still sign out).
    pub async fn logout(&self, token: &SessionToken) -> Result<()> {
        let current = self.authenticate(token).await?;
        self.revoke_session(current.identity.id, current.session.id)
            .await
    }

    /// A token that signs out the session `token` belongs to (Kratos's `logout_token`): a
    /// MAC of the session id, so a page on another site cannot sign the user out — it
    /// would need both this token and the session cookie.
    pub async fn logout_token(&self, token: &SessionToken) -> Result<String> {
        let current = self.authenticate(token).await?;
        let tag = self
            .keyring()
            .mac(MacPurpose::Logout, &[current.session.id.as_bytes()]);
        Ok(Base64UrlUnpadded::encode_string(&tag))
    }

    /// Ends the session `token` belongs to, if `logout_token` was made for it.
    pub async fn logout_with_token(&self, token: &SessionToken, logout_token: &str) -> Result<()> {
        let current = self.authenticate(token).await?;
        let tag = Base64UrlUnpadded::decode_vec(logout_token.trim()).unwrap_or_default();
        if !self
            .keyring()
            .verify(MacPurpose::Logout, &[current.session.id.as_bytes()], &tag)
        {
            return Err(Error::InvalidInput(
                "the logout token does not belong to this session; get a fresh one from the logout URL endpoint"
                    .into(),
            ));
        }
        self.revoke_session(current.identity.id, current.session.id)
            .await
    }

    /// Extends an active session by the configured lifespan from now.
    pub async fn extend_session(&self, session_id: Uuid) -> Result<Session> {
        let mut session = self.session(session_id).await?;
        let now = self.now();
        if !session.active || session.expires_at <= now {
            let reason = if session.active {
                SessionRefusal::Expired
            } else {
                SessionRefusal::Revoked
            };
            return Err(SessionError::Inactive(reason).into());
        }
        session.expires_at = now + self.inner.config.session.lifespan;
        if !self.inner.store.update_session(&session).await? {
            // Revoked between the read and the write.
            return Err(SessionError::Inactive(SessionRefusal::Revoked).into());
        }
        self.invalidate(SessionEvent::Session(session.id));
        Ok(session)
    }

    /// All sessions, by id; `active` filters on the revocation flag.
    pub async fn list_sessions(
        &self,
        active: Option<bool>,
        page: PageRequest,
    ) -> Result<Page<Session>> {
        Ok(self.inner.store.list_sessions(active, page).await?)
    }

    /// A session by id (whatever its state).
    pub async fn session(&self, session_id: Uuid) -> Result<Session> {
        self.inner
            .store
            .session(session_id)
            .await?
            .ok_or(Error::NotFound {
                what: "session",
                id: session_id,
            })
    }

    /// An identity's sessions, newest first (revoked and expired ones included).
    pub async fn sessions(&self, identity_id: Uuid) -> Result<Vec<Session>> {
        Ok(self.inner.store.sessions_of(identity_id).await?)
    }

    /// Revokes one session of an identity.
    pub async fn revoke_session(&self, identity_id: Uuid, session_id: Uuid) -> Result<()> {
        if self
            .inner
            .store
            .revoke_session(identity_id, session_id)
            .await?
        {
            self.invalidate(SessionEvent::Session(session_id));
            Ok(())
        } else {
            Err(Error::NotFound {
                what: "session",
                id: session_id,
            })
        }
    }

    /// Revokes every other session of the current session's identity; returns how many.
    pub async fn revoke_other_sessions(&self, current: &AuthenticatedSession) -> Result<u64> {
        let revoked = self
            .inner
            .store
            .revoke_sessions(current.identity.id, Some(current.session.id))
            .await?;
        self.invalidate(SessionEvent::Identity(current.identity.id));
        Ok(revoked)
    }

    /// Revokes every session of an identity; returns how many.
    pub async fn revoke_all_sessions(&self, identity_id: Uuid) -> Result<u64> {
        let revoked = self.inner.store.revoke_sessions(identity_id, None).await?;
        self.invalidate(SessionEvent::Identity(identity_id));
        Ok(revoked)
    }

    /// Housekeeping a host runs now and then (e.g. hourly), each step its own statement:
    /// deletes sessions that expired more than a day ago; flows that expired more than a
    /// day ago, with the browser errors and spent one-time markers older than that;
    /// outbox messages sent or abandoned more than 30 days ago; throttle counters whose
    /// window is over; and trims the session event log to its newest 10,000 events.
    pub async fn prune(&self) -> Result<()> {
        let store = &self.inner.store;
        let day_ago = self.now() - Duration::days(1);
        store.delete_expired_sessions(day_ago).await?;
        store.prune_session_events(10_000).await?;
        store.delete_expired_flows(day_ago).await?;
        self.inner.throttle.prune(self.now()).await?;
        store
            .delete_finished_before(self.now() - Duration::days(30))
            .await?;
        Ok(())
    }
}

use crate::credential::password::Password;
