//! The sans-IO core of the servent (being written).
