"""The reference study: its configuration, methods, cells, executors and grid."""
