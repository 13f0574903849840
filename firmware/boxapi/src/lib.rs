//! Box API client: OAuth grants and refresh rotation, events poller, users sync.
