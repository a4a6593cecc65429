//! streamsql
