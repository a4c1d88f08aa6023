//! The sans-IO core of the servent: handed bytes, events and the current
//! time, it returns what to send and what happened. No sockets, no clock.

pub mod shares;
