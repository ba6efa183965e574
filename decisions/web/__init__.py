"""What every HTTP surface shares: one problem type (RFC 9457) and its responses, the input guards,
the CSP and frame headers, the database gate and readiness, and the caches' HTTP semantics."""
