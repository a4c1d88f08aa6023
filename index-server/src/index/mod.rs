//! The inverted index of shared files (being written).
