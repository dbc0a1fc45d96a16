//! The floor for bench/gateway.sh: a bare axum HTTP/1 server on 127.0.0.1 that answers every
//! GET or POST, on any path, with the request body (an empty body for a GET without one).
//! The same stack as nimbus's listeners (axum::serve, tokio multi-thread), with nothing else.
//!
//! Usage: floor PORT   (0 picks a free port; prints `floor: listening on http://127.0.0.1:PORT`)

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::any;
use axum::Router;

async fn echo(body: Bytes) -> ([(axum::http::HeaderName, &'static str); 1], Bytes) {
    ([(CONTENT_TYPE, "application/json")], body)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(p)) => p,
        _ => {
            eprintln!("usage: floor PORT");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("floor: listening on http://{}", listener.local_addr()?);
    let app = Router::new()
        .route("/", any(echo))
        .route("/{*path}", any(echo));
    axum::serve(listener, app).await
}
