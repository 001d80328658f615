//! The relay's web API as a browser uses it: a session cookie, JSON calls by name.

use anyhow::Context;
use serde_json::Value;

pub struct WebClient {
    agent: ureq::Agent,
    pub base: String,
    pub cookie: Option<String>,
    /// The `Retry-After` of the last login answer, in seconds.
    pub retry_after: Option<u64>,
}

impl WebClient {
    pub fn new(base: &str) -> WebClient {
        WebClient {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            base: base.trim_end_matches('/').to_string(),
            cookie: None,
            retry_after: None,
        }
    }

    /// A browser of `relay`'s web view, trusting its test CA when it serves TLS.
    pub fn of(relay: &crate::relay::RelayProcess) -> anyhow::Result<WebClient> {
        let mut web = WebClient::new(&relay.url);
        web.agent = fieldbook_app::sync::agent(&relay.trust(), std::time::Duration::from_secs(60))?;
        Ok(web)
    }

    /// POST `/api/<name>` with `body`; the HTTP status and the JSON answer. `extra` headers
    /// are added as given (e.g. a foreign `Origin`).
    pub fn call_with(
        &self,
        name: &str,
        body: &Value,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .agent
            .post(format!("{}/api/{name}", self.base))
            .header("content-type", "application/json");
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        let mut response = request.send(body.to_string()).context(name.to_string())?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, json))
    }

    pub fn call(&self, name: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.call_with(name, body, &[])
    }

    /// Log in; keeps the session cookie. The HTTP status and answer.
    pub fn login(
        &mut self,
        team: &str,
        user: &str,
        password: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let body = serde_json::json!({ "team": team, "user": user, "password": password });
        let mut response = self
            .agent
            .post(format!("{}/api/login", self.base))
            .header("content-type", "application/json")
            .send(body.to_string())?;
        let status = response.status().as_u16();
        self.retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if let Some(set) = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
        {
            self.cookie = set.split(';').next().map(str::to_string);
        }
        let text = response.body_mut().read_to_string()?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// The team's dashboard (clients quiet for the default 30 days).
    pub fn dashboard(&self) -> anyhow::Result<fieldbook_shared::board::Dashboard> {
        let (status, body) = self.call("dashboard", &serde_json::json!({ "quiet_days": null }))?;
        anyhow::ensure!(status == 200, "dashboard: {status} {body}");
        Ok(serde_json::from_value(body)?)
    }
}
