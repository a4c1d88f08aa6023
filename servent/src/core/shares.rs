//! The shared library's pure part: file entries, keyword index, QueryHit building (being written).
