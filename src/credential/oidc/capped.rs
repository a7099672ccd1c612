//! The HTTP client every provider request goes through (discovery, JWKS, the token
//! endpoint, userinfo, GitHub's user API): no redirects, a 10 s timeout, and answers read
//! up to [`MAX_ANSWER`] bytes — a longer one (declared or found out while reading) is
//! refused with an error naming the bound, never read into memory whole.

use std::future::Future;
use std::pin::Pin;

use openidconnect::{AsyncHttpClient, HttpClientError, HttpRequest, HttpResponse};

/// The most of a provider's answer that is read: 1 MiB (a discovery document, a JWKS, a
/// token response or a userinfo answer is a few KiB).
pub(super) const MAX_ANSWER: usize = 1 << 20;

/// What a provider answered beyond [`MAX_ANSWER`] is refused as.
pub(super) const TOO_LONG: &str = "the provider's answer is over 1 MiB";

/// A `reqwest` client whose answers are read up to [`MAX_ANSWER`].
#[derive(Clone, Debug)]
pub(super) struct CappedClient(reqwest::Client);

impl CappedClient {
    /// The client: no redirects (the `openidconnect` crate's advice: a redirect could carry
    /// the code or the client secret elsewhere), a 10 s timeout.
    pub(super) fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self(http)
    }

    /// The underlying client, for requests that read their answer themselves with
    /// [`read_capped`].
    pub(super) fn reqwest(&self) -> &reqwest::Client {
        &self.0
    }
}

/// `response`'s body, or [`TOO_LONG`] as soon as it is known to be over [`MAX_ANSWER`].
pub(super) async fn read_capped(response: &mut reqwest::Response) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER as u64)
    {
        return Err(ReadError::TooLong);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Reqwest)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(ReadError::TooLong);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Why an answer was not read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// Over [`MAX_ANSWER`].
    TooLong,
    /// The connection failed while reading.
    Reqwest(reqwest::Error),
}

impl From<ReadError> for HttpClientError<reqwest::Error> {
    fn from(err: ReadError) -> Self {
        match err {
            ReadError::TooLong => HttpClientError::Other(TOO_LONG.to_owned()),
            ReadError::Reqwest(e) => HttpClientError::Reqwest(Box::new(e)),
        }
    }
}

type Answer<'c> = Pin<
    Box<
        dyn Future<Output = Result<HttpResponse, HttpClientError<reqwest::Error>>>
            + Send
            + Sync
            + 'c,
    >,
>;

impl<'c> AsyncHttpClient<'c> for CappedClient {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Answer<'c>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(Box::new)?;
            let mut response = self.0.execute(request).await.map_err(Box::new)?;
            let mut builder = oauth2::http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = read_capped(&mut response).await?;
            builder.body(body).map_err(HttpClientError::Http)
        })
    }
}
