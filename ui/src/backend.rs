//! Where the UI's requests go: the Tauri commands in the app window, the relay's HTTP API in a
//! plain browser. Chosen once at start-up by whether the window has Tauri's global object. Both
//! speak the typed calls of `fieldbook_shared::api`; only the transport differs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fieldbook_shared::api::{AppError, Call, ErrorKind};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

pub type Reply = Pin<Box<dyn Future<Output = Result<serde_json::Value, AppError>>>>;

/// A transport for calls: `name` is [`Call::NAME`], `args` the call as JSON.
pub trait Backend: Send + Sync {
    fn call_json(&self, name: &'static str, args: serde_json::Value) -> Reply;
}

/// Send a typed call and read its typed reply.
pub async fn call<C: Call>(backend: &dyn Backend, call: C) -> Result<C::Reply, AppError> {
    let args = serde_json::to_value(&call).map_err(|e| transport(e.to_string()))?;
    let reply = backend.call_json(C::NAME, args).await?;
    serde_json::from_value(reply).map_err(|e| transport(format!("unreadable reply: {e}")))
}

fn transport(message: String) -> AppError {
    AppError::new(ErrorKind::Transport, message)
}

/// Whether this page runs in the app's window (else in a browser, served by the relay).
pub fn in_app() -> bool {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &JsValue::from_str("__TAURI__")).ok())
        .is_some_and(|t| !t.is_undefined())
}

/// The backend for this window.
pub fn detect() -> Arc<dyn Backend> {
    if in_app() {
        Arc::new(TauriBackend)
    } else {
        Arc::new(HttpBackend {
            base: String::new(),
        })
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;
}

/// JSON through the JS engine's own parser: keeps objects plain (not `Map`s), which is what
/// Tauri's argument deserializer expects.
fn to_js(value: &serde_json::Value) -> Result<JsValue, AppError> {
    js_sys::JSON::parse(&value.to_string()).map_err(|_| transport("cannot encode request".into()))
}

fn from_js(value: &JsValue) -> serde_json::Value {
    if value.is_undefined() || value.is_null() {
        return serde_json::Value::Null;
    }
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// An error as the backend sent it (an [`AppError`]), or the raw message.
fn error_from(value: serde_json::Value) -> AppError {
    match serde_json::from_value::<AppError>(value.clone()) {
        Ok(e) => e,
        Err(_) => transport(match value {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }),
    }
}

/// The app window: Tauri commands, each call's fields under the command's `req` argument.
pub struct TauriBackend;

impl Backend for TauriBackend {
    fn call_json(&self, name: &'static str, args: serde_json::Value) -> Reply {
        Box::pin(async move {
            let args = to_js(&serde_json::json!({ "req": args }))?;
            match tauri_invoke(name, args).await {
                Ok(v) => Ok(from_js(&v)),
                Err(e) => Err(error_from(from_js(&e))),
            }
        })
    }
}

/// A plain browser: `POST /api/<name>` on the server that served the page, with its session
/// cookie.
pub struct HttpBackend {
    pub base: String,
}

impl Backend for HttpBackend {
    fn call_json(&self, name: &'static str, args: serde_json::Value) -> Reply {
        let url = format!("{}/api/{name}", self.base);
        Box::pin(async move {
            let init = web_sys::RequestInit::new();
            init.set_method("POST");
            init.set_credentials(web_sys::RequestCredentials::SameOrigin);
            init.set_body(&JsValue::from_str(&args.to_string()));
            let headers = web_sys::Headers::new().map_err(|_| transport("headers".into()))?;
            let _ = headers.set("content-type", "application/json");
            init.set_headers(&headers);
            let request = web_sys::Request::new_with_str_and_init(&url, &init)
                .map_err(|_| transport("cannot build the request".into()))?;
            let window = web_sys::window().ok_or_else(|| transport("no window".into()))?;
            let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
                .await
                .map_err(|_| transport("the server cannot be reached".into()))?
                .unchecked_into();
            let body = JsFuture::from(
                response
                    .json()
                    .map_err(|_| transport("unreadable reply".into()))?,
            )
            .await
            .map(|v| from_js(&v))
            .unwrap_or(serde_json::Value::Null);
            if response.ok() {
                Ok(body)
            } else {
                Err(error_from(body))
            }
        })
    }
}
