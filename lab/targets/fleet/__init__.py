"""The lab's own fleet: a strategy's plan walked against an engine, with nginx in front."""
