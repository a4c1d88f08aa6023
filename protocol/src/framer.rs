//! (framer being written)
