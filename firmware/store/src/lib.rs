//! The redb store: queue of Box events, cursors, seen ids, users, config, secrets.
