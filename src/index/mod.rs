//! In-memory outlet index (rstar R-tree + h3o cell map), kept coherent across instances through
//! PostgreSQL LISTEN/NOTIFY. Built in issue 3; nothing here yet.
