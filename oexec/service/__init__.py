"""The order pipeline: idempotency -> validation -> risk -> rate limits -> breaker -> venue."""
