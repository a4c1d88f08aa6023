//! Scanning shared directories and hashing files, off the event-loop thread (being written).
