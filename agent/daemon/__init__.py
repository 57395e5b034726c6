"""The health agent: its loop, the pure judgement, probes and their specs, state, metrics."""
