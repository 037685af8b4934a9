//! `firedrill lsp`: a language server for `.feature` files over standard input and output.
//!
//! Built on `lsp-server` (rust-analyzer's scaffold) and `lsp-types`: the checks it runs are
//! synchronous and need no runtime, so a plain message loop is all it takes. It answers with
//! `validate`'s problems as the author types (full-text sync, diagnostics pushed on open and on
//! every change), completion of steps and of the platform's names at argument positions, and
//! hover with each step's doc and example.
//!
//! The platform file is, first found: the client's `initializationOptions.platform` (or a
//! `workspace/didChangeConfiguration` with `settings.firedrill.platform`), a path relative to
//! the workspace root; else `--platform` / `FIREDRILL_PLATFORM` of the server process; else the
//! embedded platform. It is read again for every check, so edits to it show at the next keystroke.

mod analysis;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeConfiguration, DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument,
    DidSaveTextDocument, Notification as _, PublishDiagnostics,
};
use lsp_types::request::{Completion, HoverRequest, Request as _};
use lsp_types::{
    CompletionOptions, CompletionParams, CompletionResponse, DidChangeConfigurationParams,
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    HoverParams, HoverProviderCapability, InitializeParams, PublishDiagnosticsParams,
    ServerCapabilities, ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind, Uri,
};

use firedrill_platform::Platform;
use firedrill_steps::Catalog;

use super::{Exit, load};

/// Arguments of `lsp`.
#[derive(Debug, clap::Args)]
pub struct LspArgs {
    /// The platform file completions and checks use, unless the client names one
    /// (`initializationOptions.platform`); default: the embedded platform.
    #[arg(long, short = 'p', env = "FIREDRILL_PLATFORM")]
    pub platform: Option<PathBuf>,
    /// Accepted for editors that pass it; standard input and output are the only transport.
    #[arg(long, hide = true)]
    pub stdio: bool,
}

/// Why the server stopped early.
#[derive(Debug, thiserror::Error)]
pub enum LspError {
    /// The client broke the protocol or went away mid-message.
    #[error(
        "language server protocol error: {0} (hint: start it from an editor, which speaks LSP on its standard input)"
    )]
    Protocol(#[from] lsp_server::ProtocolError),
    /// The step catalog is inconsistent (a bug in firedrill).
    #[error("{0}")]
    Catalog(#[from] firedrill_steps::CatalogError),
    /// The reader or writer thread failed.
    #[error("language server I/O failed: {0} (hint: the client closed the pipe)")]
    Io(#[from] std::io::Error),
    /// A message could not be encoded.
    #[error("cannot encode a message: {0} (hint: a bug in firedrill; please report it)")]
    Json(#[from] serde_json::Error),
    /// The channel to the writer closed.
    #[error("the client's channel closed (hint: the editor stopped the server)")]
    Closed,
}

/// Serves one client on standard input and output until it shuts down.
pub async fn lsp(args: LspArgs) -> Exit {
    let served = tokio::task::spawn_blocking(move || {
        let (connection, threads) = Connection::stdio();
        serve(&connection, args.platform)?;
        drop(connection);
        threads.join()?;
        Ok::<_, LspError>(())
    })
    .await;
    match served {
        Ok(Ok(())) => Exit::Passed,
        Ok(Err(e)) => {
            errln!("error: {e}");
            Exit::Usage
        }
        Err(e) => {
            errln!("error: the language server stopped: {e}");
            Exit::Failed
        }
    }
}

/// The server's state: open buffers and where the platform file is.
struct Server {
    catalog: Catalog,
    documents: HashMap<Uri, String>,
    /// The workspace root, for a relative platform path.
    root: Option<PathBuf>,
    /// As the client set it (relative to `root`).
    client_platform: Option<PathBuf>,
    /// From the command line or environment.
    default_platform: Option<PathBuf>,
    /// Private copies of buffers, checked by `validate`'s code.
    scratch: PathBuf,
}

/// Runs the protocol on `connection`: the handshake, then messages until `exit`.
///
/// # Errors
///
/// [`LspError`] when the protocol breaks or the client goes away.
pub fn serve(connection: &Connection, default_platform: Option<PathBuf>) -> Result<(), LspError> {
    let capabilities = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["\"".into(), " ".into()]),
            ..CompletionOptions::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        ..ServerCapabilities::default()
    };
    let (id, params) = connection.initialize_start()?;
    let params: InitializeParams = serde_json::from_value(params)?;
    let result = serde_json::json!({
        "capabilities": capabilities,
        "serverInfo": ServerInfo { name: "firedrill".into(), version: Some(env!("CARGO_PKG_VERSION").into()) },
    });
    connection.initialize_finish(id, result)?;

    let scratch = std::env::temp_dir().join(format!("firedrill-lsp-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut server = Server {
        catalog: Catalog::build()?,
        documents: HashMap::new(),
        root: root(&params),
        client_platform: params
            .initialization_options
            .as_ref()
            .and_then(platform_setting),
        default_platform,
        scratch,
    };
    let served = server.run(connection);
    // Best effort: the copies are the user's own drafts, in a folder only this process names.
    let _ = std::fs::remove_dir_all(&server.scratch);
    served
}

/// The workspace root: the first workspace folder, else the root URI.
#[allow(deprecated)] // root_uri is deprecated in favour of workspace folders, which clients may omit.
fn root(params: &InitializeParams) -> Option<PathBuf> {
    params
        .workspace_folders
        .as_ref()
        .and_then(|f| f.first())
        .map(|f| &f.uri)
        .or(params.root_uri.as_ref())
        .and_then(file_path)
}

/// `{"platform": "…"}`, or `{"firedrill": {"platform": "…"}}` as editors nest settings.
fn platform_setting(value: &serde_json::Value) -> Option<PathBuf> {
    value
        .get("platform")
        .or_else(|| value.get("firedrill").and_then(|f| f.get("platform")))
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

fn file_path(uri: &Uri) -> Option<PathBuf> {
    url::Url::parse(uri.as_str()).ok()?.to_file_path().ok()
}

impl Server {
    fn run(&mut self, connection: &Connection) -> Result<(), LspError> {
        for message in &connection.receiver {
            match message {
                Message::Request(request) => {
                    if connection.handle_shutdown(&request)? {
                        return Ok(());
                    }
                    let response = self.request(request);
                    send(connection, Message::Response(response))?;
                }
                Message::Notification(notification) => {
                    for out in self.notification(notification) {
                        send(connection, Message::Notification(out))?;
                    }
                }
                Message::Response(_) => {}
            }
        }
        Ok(())
    }

    /// The platform file in force, as a path the process can open.
    fn platform_path(&self) -> Option<PathBuf> {
        match &self.client_platform {
            Some(path) if path.is_relative() => Some(
                self.root
                    .as_deref()
                    .map_or_else(|| path.clone(), |root| root.join(path)),
            ),
            Some(path) => Some(path.clone()),
            None => self.default_platform.clone(),
        }
    }

    /// The platform for completion; none when it does not load (its problems show as
    /// diagnostics).
    fn platform(&self) -> Option<Platform> {
        load::platform_for_checks(self.platform_path().as_deref()).ok()
    }

    fn request(&mut self, request: Request) -> Response {
        match request.method.as_str() {
            Completion::METHOD => {
                let (id, params) = match parse::<CompletionParams>(request) {
                    Ok(parsed) => parsed,
                    Err(response) => return *response,
                };
                let position = params.text_document_position;
                let items = match (
                    self.documents.get(&position.text_document.uri),
                    self.platform(),
                ) {
                    (Some(text), Some(platform)) => {
                        analysis::completion(text, position.position, &platform)
                    }
                    _ => Vec::new(),
                };
                ok(id, &CompletionResponse::Array(items))
            }
            HoverRequest::METHOD => {
                let (id, params) = match parse::<HoverParams>(request) {
                    Ok(parsed) => parsed,
                    Err(response) => return *response,
                };
                let position = params.text_document_position_params;
                let hover = self
                    .documents
                    .get(&position.text_document.uri)
                    .and_then(|text| analysis::hover(text, position.position, &self.catalog));
                ok(id, &hover)
            }
            _ => Response::new_err(
                request.id,
                lsp_server::ErrorCode::MethodNotFound as i32,
                format!("firedrill lsp does not handle {}", request.method),
            ),
        }
    }

    /// Handles a notification; returns the notifications to send back.
    fn notification(&mut self, notification: Notification) -> Vec<Notification> {
        let method = notification.method.clone();
        match method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) = notification.extract::<DidOpenTextDocumentParams>(&method) {
                    let uri = p.text_document.uri;
                    self.documents.insert(uri.clone(), p.text_document.text);
                    return self.diagnose(&[uri]);
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) = notification.extract::<DidChangeTextDocumentParams>(&method) {
                    // Full sync: the last change holds the whole text.
                    if let Some(change) = p.content_changes.into_iter().last() {
                        let uri = p.text_document.uri;
                        self.documents.insert(uri.clone(), change.text);
                        return self.diagnose(&[uri]);
                    }
                }
            }
            DidSaveTextDocument::METHOD => {
                // A saved platform file changes every buffer's problems.
                let open: Vec<Uri> = self.documents.keys().cloned().collect();
                return self.diagnose(&open);
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) = notification.extract::<DidCloseTextDocumentParams>(&method) {
                    self.documents.remove(&p.text_document.uri);
                    return vec![publish(p.text_document.uri, Vec::new())];
                }
            }
            DidChangeConfiguration::METHOD => {
                if let Ok(p) = notification.extract::<DidChangeConfigurationParams>(&method) {
                    if let Some(path) = platform_setting(&p.settings) {
                        self.client_platform = Some(path);
                    }
                    let open: Vec<Uri> = self.documents.keys().cloned().collect();
                    return self.diagnose(&open);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn diagnose(&self, uris: &[Uri]) -> Vec<Notification> {
        let platform = self.platform_path();
        uris.iter()
            .filter_map(|uri| {
                let text = self.documents.get(uri)?;
                let path = file_path(uri).unwrap_or_else(|| PathBuf::from("buffer.feature"));
                if !is_feature(&path) {
                    return None;
                }
                let found = analysis::diagnostics(text, &path, &self.scratch, platform.as_deref());
                Some(publish(uri.clone(), found))
            })
            .collect()
    }
}

fn publish(uri: Uri, diagnostics: Vec<lsp_types::Diagnostic>) -> Notification {
    Notification::new(
        PublishDiagnostics::METHOD.to_owned(),
        PublishDiagnosticsParams {
            uri,
            diagnostics,
            version: None,
        },
    )
}

fn parse<P: serde::de::DeserializeOwned>(
    request: Request,
) -> Result<(RequestId, P), Box<Response>> {
    let id = request.id.clone();
    let method = request.method.clone();
    request.extract(&method).map_err(|e| {
        Box::new(Response::new_err(
            id,
            lsp_server::ErrorCode::InvalidParams as i32,
            format!("{method}: invalid parameters: {e:?}"),
        ))
    })
}

fn ok<T: serde::Serialize>(id: RequestId, result: &T) -> Response {
    match serde_json::to_value(result) {
        Ok(value) => Response::new_ok(id, value),
        Err(e) => Response::new_err(
            id,
            lsp_server::ErrorCode::InternalError as i32,
            format!("cannot encode the answer: {e}"),
        ),
    }
}

fn send(connection: &Connection, message: Message) -> Result<(), LspError> {
    connection
        .sender
        .send(message)
        .map_err(|_| LspError::Closed)
}

/// Whether `path` is a feature file (the server checks no other).
fn is_feature(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "feature")
}
