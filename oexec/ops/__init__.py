"""Operations: metrics, JSON logs, the ops HTTP app (/health, /ready, /metrics), sd_notify."""
