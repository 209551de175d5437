"""One router module per resource: `rewards` (`/v1/rewards`) and `health` (probes, metrics)."""
