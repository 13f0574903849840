//! The local setup page: tiny_http behind in-process rustls, sessions, CSRF, OAuth callback.
