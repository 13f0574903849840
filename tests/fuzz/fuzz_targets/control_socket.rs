//! The control socket's protocol (`boxidr::control::answer`): whatever a local client writes,
//! over an in-memory stream, with a supervisor that answers the commands it carries out.
//!
//! Invariants: the service never panics and always answers exactly one line: one JSON object
//! and a final LF, nothing after it; an unknown command is named back in at most 32 characters
//! (its text never reaches the supervisor); a command is carried out only when the line is
//! exactly that command; the service reads at most 256 bytes of a command.
#![no_main]

use std::sync::OnceLock;

use boxidr::control::{Request, answer};
use boxidr::status::StatusCache;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let (client, server) = tokio::io::duplex(4096);
        let status = StatusCache::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let supervisor = tokio::spawn(async move {
            let mut carried_out = Vec::new();
            while let Some(request) = rx.recv().await {
                match request {
                    Request::SetupCode(reply) => {
                        carried_out.push("setup-code");
                        let _ = reply.send(json!({"code": "ABCD-EFGH"}));
                    }
                    Request::FactoryReset(reply) => {
                        carried_out.push("factory-reset");
                        let _ = reply.send(json!({"reset": true}));
                    }
                }
            }
            carried_out
        });
        let (mut read, mut write) = tokio::io::split(client);
        let input = data.to_vec();
        let writer = tokio::spawn(async move {
            // The service stops reading after its limit; a full pipe is not an error here.
            let _ = write.write_all(&input).await;
            let _ = write.shutdown().await;
        });
        let served = answer(server, &status, &tx).await;
        drop(tx);
        let mut reply = Vec::new();
        read.read_to_end(&mut reply).await.expect("reply readable");
        writer.abort();
        let carried_out = supervisor.await.expect("supervisor");

        // What `read_line` took: up to the first LF within the first 256 bytes.
        let head = &data[..data.len().min(256)];
        let line = match head.iter().position(|&b| b == b'\n') {
            Some(end) => &head[..=end],
            None => head,
        };
        let Ok(line) = std::str::from_utf8(line) else {
            // Not UTF-8: the service refuses to read it and answers nothing.
            assert!(served.is_err(), "non-UTF-8 command was read");
            assert!(carried_out.is_empty());
            return;
        };
        served.expect("answered");
        assert_eq!(reply.last(), Some(&b'\n'), "reply does not end the line");
        let body = &reply[..reply.len() - 1];
        assert!(!body.contains(&b'\n'), "reply is more than one line");
        let value: Value = serde_json::from_slice(body).expect("reply is JSON");
        let command = line.trim();
        match command {
            "status" => assert!(carried_out.is_empty()),
            "setup-code" => {
                assert_eq!(carried_out, ["setup-code"]);
                assert_eq!(value, json!({"code": "ABCD-EFGH"}));
            }
            "factory-reset" => {
                assert_eq!(carried_out, ["factory-reset"]);
                assert_eq!(value, json!({"reset": true}));
            }
            other => {
                assert!(carried_out.is_empty(), "{other:?} reached the supervisor");
                let error = value["error"]
                    .as_str()
                    .expect("an error for an unknown command");
                let echoed: String = other.chars().take(32).collect();
                assert!(error.contains(&format!("{echoed:?}")), "{error}");
                assert!(other.chars().count() <= 32 || !error.contains(&format!("{other:?}")));
            }
        }
    });
});
