//! A connected, authenticated SDK client for one command, and waiting on its events.

use std::time::{Duration, Instant};

use cobra::{Client, Config, Event};
use crossbeam_channel::Receiver;

use super::{CliError, ConnArgs, creds, default_endpoint};

/// Capacity of the event channel unless a command needs more (the SDK drops events past it).
pub(super) const DEFAULT_EVENTS: usize = 1024;

/// The SDK config of a client command: endpoint, appkey and credentials from the options, defaulted
/// from `COBRA_PORT` and the apps config (the appkey's first role) as every client command does.
pub fn client_config(conn: &ConnArgs, default_appkey: &str) -> Result<Config, CliError> {
    let endpoint = conn.endpoint.clone().unwrap_or_else(default_endpoint);
    let appkey = conn
        .appkey
        .clone()
        .unwrap_or_else(|| default_appkey.to_owned());
    let (role, secret) = creds::resolve(
        &appkey,
        conn.rolename.as_deref(),
        conn.rolesecret.as_deref(),
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut config = Config::new(endpoint, appkey, role, secret)
        .backoff(Duration::from_millis(100), Duration::from_secs(1))
        .user_agent(format!("cobra-cli/{}", env!("CARGO_PKG_VERSION")));
    if conn.no_deflate {
        config = config.deflate(None);
    }
    Ok(config)
}

/// An authenticated client and its event stream.
pub(super) struct Session {
    /// The SDK client.
    pub client: Client,
    /// Its events (subscribed to before connecting, so none is missed).
    pub events: Receiver<Event>,
    /// How long to wait for an answer.
    pub timeout: Duration,
    endpoint: String,
}

impl Session {
    /// Connects with the options (credentials defaulting from the apps config for `default_appkey`) and
    /// waits until authenticated.
    pub(super) fn open(conn: &ConnArgs, default_appkey: &str) -> Result<Session, CliError> {
        Session::open_steps(conn, default_appkey, DEFAULT_EVENTS).map_err(|(_, e)| e)
    }

    /// [`Session::open`], also telling which step failed (`connect` or `authenticate`).
    pub(super) fn open_steps(
        conn: &ConnArgs,
        default_appkey: &str,
        events_capacity: usize,
    ) -> Result<Session, (&'static str, CliError)> {
        let timeout = conn.timeout().map_err(|e| ("options", e))?;
        let config = client_config(conn, default_appkey)
            .map_err(|e| ("credentials", e))?
            .event_queue_capacity(events_capacity.max(DEFAULT_EVENTS));
        let endpoint = config.endpoint.clone();
        let client =
            Client::new(config, None).map_err(|e| ("connect", CliError::Usage(e.to_string())))?;
        let events = client.events();
        let session = Session {
            client,
            events,
            timeout,
            endpoint,
        };
        session
            .client
            .connect()
            .map_err(|e| ("connect", CliError::Failed(e.to_string())))?;

        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        let mut opened = false;
        loop {
            let event = session.events.recv_deadline(deadline).map_err(|_| {
                let step = if opened { "authenticate" } else { "connect" };
                let why = last_error
                    .take()
                    .map_or_else(String::new, |e| format!(": {e}"));
                (
                    step,
                    CliError::Failed(format!(
                        "no connection to {} within {timeout:?}{why}",
                        session.endpoint
                    )),
                )
            })?;
            match event {
                Event::Authenticated => return Ok(session),
                Event::Open => opened = true,
                Event::Error { kind, message, .. } if kind.is_permanent() => {
                    let step = if kind == cobra::ErrorKind::AuthenticationFailed {
                        "authenticate"
                    } else {
                        "connect"
                    };
                    return Err((
                        step,
                        CliError::Failed(format!("{kind:?} at {}: {message}", session.endpoint)),
                    ));
                }
                Event::Error { kind, message, .. } => {
                    last_error = Some(format!("{kind:?}: {message}"))
                }
                _ => {}
            }
        }
    }

    /// Fails on connection events that retrying cannot fix (the engine retries the others by itself).
    pub(super) fn check_connection_event(&self, event: &Event) -> Result<(), CliError> {
        match event {
            Event::Error { kind, message, .. } if kind.is_permanent() => Err(CliError::Failed(
                format!("{kind:?} at {}: {message}", self.endpoint),
            )),
            _ => Ok(()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Close the WebSocket properly rather than letting the process exit cut it.
        let _ = self.client.disconnect();
    }
}

/// The next event before `deadline`; on timeout, fails saying how many acks were still awaited.
pub(super) fn wait_event(
    events: &Receiver<Event>,
    deadline: Instant,
    pending: usize,
) -> Result<Event, CliError> {
    events.recv_deadline(deadline).map_err(|e| match e {
        crossbeam_channel::RecvTimeoutError::Timeout => {
            CliError::Failed(format!("timed out waiting for {pending} acknowledgements"))
        }
        crossbeam_channel::RecvTimeoutError::Disconnected => {
            CliError::Failed("the client stopped".into())
        }
    })
}

/// Maps an SDK error of a request to a failure naming the request.
pub(super) fn failed(what: &'static str) -> impl Fn(cobra::Error) -> CliError {
    move |e| CliError::Failed(format!("{what}: {e}"))
}
