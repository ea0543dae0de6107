//! Loopback ports for the stack's processes.

use std::net::TcpListener;

use super::StackError;

/// A free TCP port on 127.0.0.1.
pub(super) fn free_port() -> Result<u16, StackError> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| StackError::Bind {
            addr: "127.0.0.1:0".to_owned(),
            source,
        })
}
